"""Side-by-side costs of the benchmarks: a model measured later is paired with the teacher measured with it."""

from __future__ import annotations

from conftest import load_benchmark


def test_a_model_measured_later_keeps_the_teacher_latency_of_its_own_process(tmp_path, monkeypatch):
    import findistill.costs.fresh_process as fresh_process
    import findistill.tracking.runs as runs

    distill = load_benchmark("distill")
    monkeypatch.setattr(distill, "RESULTS", tmp_path)
    monkeypatch.setattr(runs, "localize_model", lambda uri: uri)
    calls: list[list[str]] = []
    machine_speed = iter([1.0, 1.5])  # the second process runs on a machine 1.5x slower

    def fake_measure(models, sentences, max_length, rounds):
        calls.append(sorted(models))
        slow = next(machine_speed)
        ms = {"runs:/t/model": 20.0, "runs:/a/model": 10.0, "runs:/b/model": 8.0}
        return {key: {"latency_cpu_b1_ms_p50": slow * ms[uri], "latency_cpu_b32_ms_p50": 4 * slow * ms[uri],
                      "params_total": 1.0} for key, uri in models.items()}

    monkeypatch.setattr(fresh_process, "measure_saved_models", fake_measure)
    first = distill.measure_costs("c", {"teacher": "runs:/t/model", "a": "runs:/a/model"}, data="sample",
                                  reference="teacher")
    assert calls == [["a", "teacher"]]
    assert first["a"]["reference_latency_cpu_b1_ms_p50"] == 20.0
    later = distill.measure_costs("c", {"teacher": "runs:/t/model", "a": "runs:/a/model", "b": "runs:/b/model"},
                                  data="sample", reference="teacher")
    assert calls[1] == ["b", "teacher"]  # only the new model, beside the teacher again
    assert later["teacher"]["latency_cpu_b1_ms_p50"] == 20.0  # the teacher's entry is its first measurement
    assert later["a"] == first["a"]
    assert later["b"]["latency_cpu_b1_ms_p50"] == 12.0
    # b's ratio to the teacher is that of one process (30 / 12), not of two machines' moods (20 / 12)
    assert later["b"]["reference_latency_cpu_b1_ms_p50"] / later["b"]["latency_cpu_b1_ms_p50"] == 2.5
    assert later["b"]["reference_latency_cpu_b32_ms_p50"] == 120.0
    again = distill.measure_costs("c", {"teacher": "runs:/t/model", "b": "runs:/b/model"}, data="sample",
                                  reference="teacher")
    assert len(calls) == 2 and again["b"] == later["b"]  # nothing missing: nothing measured
