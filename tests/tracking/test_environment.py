"""Environment tags: what a run's numerics depend on besides its parameters."""

import json
import os
import subprocess
import sys


def test_environment_tags_name_the_kernels_torch_dispatches_to_and_the_settings_that_pin_them():
    code = ("import json; from findistill.tracking.environment import environment_tags, fingerprint; "
            "t = environment_tags(); print(json.dumps([t, fingerprint(t)]))")
    runs = {}
    for capability in ("", "default"):  # torch's own choice here, and its portable kernels
        env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
        if capability:
            env.update(ATEN_CPU_CAPABILITY=capability, MKL_CBWR="COMPATIBLE")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        runs[capability] = json.loads(out.stdout.strip().splitlines()[-1])
    (native, native_print), (pinned, pinned_print) = runs[""], runs["default"]
    assert pinned["env.cpu_capability"] == "DEFAULT" != native["env.cpu_capability"]
    assert pinned["env.aten_cpu_capability"] == "default" and pinned["env.mkl_cbwr"] == "COMPATIBLE"
    assert "env.mkl_cbwr" not in native
    assert native["env.cpu_model"] == pinned["env.cpu_model"] and native["env.torch"].startswith("2.")
    assert native_print != pinned_print and "MKL_CBWR=COMPATIBLE" in pinned_print
    assert native["env.cpu_capability"] in native_print and f"torch {native['env.torch']}" in native_print


def test_the_fingerprint_keeps_what_decides_the_numerics_and_drops_the_rest():
    from findistill.tracking.environment import fingerprint

    tags = {"env.cpu_model": "AMD EPYC", "env.cpu_capability": "AVX512", "env.blas": "mkl 2024.2",
            "env.torch": "2.13.0", "env.transformers": "5.1.0", "env.torch_threads": "2", "env.mlflow": "3.1.0"}
    assert fingerprint(tags) == "AMD EPYC, AVX512, mkl 2024.2, torch 2.13.0, transformers 5.1.0, 2 threads"
    assert fingerprint({**tags, "env.mlflow": "3.2.0", "env.platform": "Linux"}) == fingerprint(tags)
    assert fingerprint({**tags, "env.cpu_capability": "AVX2"}) != fingerprint(tags)
    assert fingerprint({"findistill.corpus": "sample"}) == ""


def test_the_soft_targets_digest_sees_a_change_in_the_last_bit_of_one_logit():
    import hashlib

    import numpy as np

    from findistill.training.distill import WordOutputs, update_digest

    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(n, 5)).astype(np.float32) for n in (3, 7)]
    present = [np.ones(3, bool), np.array([1, 1, 0, 1, 1, 1, 1], bool)]

    def digest(logits, present):
        d = hashlib.sha256()
        update_digest(d, WordOutputs(logits, None, present))
        return d.hexdigest()

    nudged = [logits[0], logits[1].copy()]
    nudged[1][4, 2] = np.nextafter(nudged[1][4, 2], np.float32(np.inf))
    same = digest([x.copy() for x in logits], [p.copy() for p in present])
    assert digest(logits, present) == same
    assert digest(nudged, present) != same
    assert digest(logits, [present[0], np.ones(7, bool)]) != same


def test_numerics_against_another_machine_names_the_results_that_differ_and_falls_back_to_the_losses():
    import torch
    from conftest import load_benchmark

    numerics = load_benchmark("numerics")
    svd, logits = torch.arange(6, dtype=torch.float32), torch.ones(3, 2)
    nudged = logits.clone()
    nudged[2, 1] = torch.nextafter(nudged[2, 1], torch.tensor(2.0))
    here = {"native": {"losses": [1.5, 1.25], "sha256": {"svd": numerics.digest(svd), "logits": numerics.digest(logits),
                                                         "weights": numerics.digest(svd)}},
            "portable": {"losses": [1.5, 1.0], "sha256": {"svd": numerics.digest(svd),
                                                          "logits": numerics.digest(nudged),
                                                          "weights": numerics.digest(svd)}},
            "only here": {"losses": [1.0], "sha256": {}}}
    with_digests = {"rows": {"native": {"losses": [9.0], "sha256": dict(here["native"]["sha256"])},
                             "portable": {"losses": [1.5, 1.0], "sha256": dict(here["native"]["sha256"])}}}
    assert numerics.against(here, with_digests) == {"native": "identical", "portable": "differs: logits"}
    losses_only = {"rows": {"native": {"losses": [1.5, 1.25]}, "portable": {"losses": [1.5, 1.0000001]}}}
    assert numerics.against(here, losses_only) == {"native": "same losses", "portable": "other losses"}
    assert numerics.digest(nudged) != numerics.digest(logits) == numerics.digest(logits.clone())
