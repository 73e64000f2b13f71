"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

from findistill.data.splits import load_ner_data


def test_transfer_set_from_raw_text_or_another_corpus_never_holds_evaluation_sentences(tmp_path):
    from findistill.stages import distill
    from findistill.stages.distill import load_transfer_set

    data = load_ner_data("sample")
    held_out = " ".join(data.splits["test"][0].tokens)
    text = tmp_path / "domain.txt"
    text.write_text(f"{held_out}\nThe lender, Acme Bank N.A., extended the facility.\n\nFitch rated the notes.\n")
    config = distill.Config(teacher="x", transfer_data=str(text), transfer_ratio=1.0)
    sentences = load_transfer_set(config, data)
    assert sorted(map(tuple, sentences)) == [
        ("Fitch", "rated", "the", "notes", "."),
        ("The", "lender", ",", "Acme", "Bank", "N.A.", ",", "extended", "the", "facility", "."),
    ]  # the test sentence and the blank line are left out
    config = distill.Config(teacher="x", transfer_data="sample", transfer_ratio=0.1)
    from_corpus = load_transfer_set(config, data)
    assert len(from_corpus) == round(0.1 * len(data.splits["train"])) > 0
    train_texts = {" ".join(s.tokens) for s in data.splits["train"]}
    assert all(" ".join(words) in train_texts for words in from_corpus)
    assert load_transfer_set(distill.Config(teacher="x", transfer_data="none"), data) == []


def test_transfer_set_from_several_sources_draws_from_each_and_never_holds_evaluation_sentences(tmp_path):
    from findistill.stages import distill
    from findistill.stages.distill import load_transfer_set

    data = load_ner_data("sample")
    evaluation = data.splits["validation"] + data.splits["test"]
    held_out = {" ".join(s.tokens) for s in evaluation}
    # a raw-text source that repeats every evaluation sentence among new ones, and an NER corpus whose
    # train split is where the evaluation sentences come from too
    news = [f"Reuters reported that Fund {i} bought shares of Company {i} ." for i in range(40)]
    text = tmp_path / "news.txt"
    text.write_text("\n".join([*held_out, *news]) + "\n")
    corpus = tmp_path / "ner.conll"
    corpus.write_text("\n\n".join("\n".join(f"{w} O" for w in s.tokens) for s in evaluation + data.splits["train"][:5])
                      + "\n")
    config = distill.Config(teacher="x", transfer_data=f"augment,{text},{corpus}", transfer_ratio=0.1)
    sentences = load_transfer_set(config, data)
    joined = [" ".join(words) for words in sentences]
    n = round(0.1 * len(data.splits["train"]))
    # the raw text is split into words again ("N.A. ," may come back as "N.A ., "): compare without spaces
    assert not {j.replace(" ", "") for j in joined} & {h.replace(" ", "") for h in held_out}
    assert len(joined) == len(set(joined))  # no sentence is taken twice (this augmented draw has no repeats)
    assert sum(j.startswith("Reuters reported") for j in joined) == n  # the text file gave its share
    train = {" ".join(s.tokens) for s in data.splits["train"][:5]}
    assert 0 < sum(j in train for j in joined) <= 5  # the corpus gave what it had outside the evaluation
    assert len(joined) > n + 5  # and 'augment' gave its share too


def test_an_entity_rich_transfer_set_is_chosen_by_the_teacher_from_a_larger_draw(mlflow_store, tmp_path,
                                                                                  tiny_classifier):
    import mlflow
    import pytest

    from findistill.config import ConfigError, parse_params
    from findistill.stages import distill
    from findistill.stages.common import load_stage_data

    model, tokenizer = tiny_classifier
    teacher = _save(model, tokenizer, tmp_path / "teacher")
    text = tmp_path / "news.txt"
    text.write_text("\n".join(f"Fund {i} bought {i % 7} shares of Company {i} in London ." for i in range(120)) + "\n")
    params = {"teacher": str(teacher), "data": "sample", "max_sentences": "40", "epochs": "1", "batch_size": "8",
              "max_length": "64", "student_layers": "1", "transfer_data": str(text), "transfer_ratio": "0.5",
              "transfer_select": "entities", "transfer_pool": "3", "measure_resources": "false"}
    metrics = mlflow.get_run(distill.run(parse_params(distill.Config, params))).data.metrics
    data = load_stage_data(parse_params(distill.Config, params))
    n = round(0.5 * len(data.splits["train"]))
    assert metrics["transfer_sentences"] == n and metrics["transfer_pool_sentences"] == 3 * n
    assert metrics["transfer_entity_words"] >= metrics["transfer_pool_entity_words"]
    # with several sources each keeps its own share, though every augmented sentence has entities
    config = parse_params(distill.Config, {**params, "transfer_data": f"augment,{text}"})
    groups = distill.transfer_candidates(config, data, config.transfer_pool)
    assert [len(g) for g in groups] == [3 * n, 3 * n]
    with mlflow.start_run():
        chosen = distill.select_by_teacher(config, data, groups, model, tokenizer, tmp_path / "cache", "cpu")
    assert len(chosen) == 2 * n and sum(words[0] == "Fund" for words in chosen) == n
    # a share of 0.5: half of each source's set is the start of its seeded draw, chosen or not
    half = parse_params(distill.Config, {**params, "transfer_entity_share": "0.5"})
    with mlflow.start_run():
        mixed = distill.select_by_teacher(half, data, groups[1:], model, tokenizer, tmp_path / "cache", "cpu")
    assert len(mixed) == n and mixed[:n - round(n / 2)] == groups[1][:n - round(n / 2)]
    with pytest.raises(ConfigError, match="transfer_entity_share"):
        parse_params(distill.Config, {**params, "transfer_entity_share": "1.5"})


def test_a_factorised_student_learns_from_an_ensemble_with_a_mixed_transfer_set_and_the_kept_layer_map(
        mlflow_store, tmp_path, tiny_classifier, capsys):
    import mlflow

    from findistill.config import parse_params
    from findistill.models.factorised import FactorisedEmbedding
    from findistill.models.loading import load_token_classifier
    from findistill.stages import distill
    from findistill.tracking.runs import localize_model

    model, tokenizer = tiny_classifier
    folders = []
    for name, seed in (("a", 0), ("b", 1)):  # two teachers that differ
        import torch

        torch.manual_seed(seed)
        member = load_token_classifier(str(_save(model, tokenizer, tmp_path / "base")), None)
        member.classifier.reset_parameters()
        folders.append(_save(member, tokenizer, tmp_path / name))
    text = tmp_path / "news.txt"
    text.write_text("\n".join(f"Fund {i} bought shares of Company {i} in London ." for i in range(50)) + "\n")
    params = {"teacher": ",".join(map(str, folders)), "data": "sample", "max_sentences": "40", "epochs": "1",
              "batch_size": "8", "max_length": "64", "student_layers": "2", "embedding_rank": "8",
              "embedding_weights": "frequency", "embedding_exact_rows": "20", "intermediate_size": "48",
              "embedding_weights_text": str(text),
              "hidden_weight": "1", "hidden_layers": "kept", "transfer_data": f"augment,{text}",
              "transfer_ratio": "0.5", "measure_resources": "false"}
    run = mlflow.get_run(distill.run(parse_params(distill.Config, params)))
    assert run.info.status == "FINISHED"
    assert run.data.tags["findistill.ensemble_size"] == "2" and run.data.tags["findistill.layer_map"] == "1:1,2:2"
    assert run.data.metrics["transfer_sentences"] == 2 * round(0.5 * 40)  # both sources gave their share
    # rank 8 spent on the tokens of the training and transfer sentences: closer on them than over the vocabulary
    assert 0 < run.data.metrics["embedding_weighted_error"] < run.data.metrics["embedding_svd_error"] < 1
    # ... and on the pieces of the whole news file, counted as well
    news_pieces = sum(len(tokenizer.tokenize(line)) for line in text.read_text().splitlines())
    assert run.data.metrics["embedding_weight_tokens"] > news_pieces > 0
    student = load_token_classifier(localize_model(f"runs:/{run.info.run_id}/model"))
    embeddings = student.get_input_embeddings()
    assert isinstance(embeddings, FactorisedEmbedding) and len(embeddings.exact_ids()) == 20
    assert student.config.intermediate_size == 48 and run.data.tags["mlflow.runName"].endswith(" s2-same-r8wc-x20-f48")
    assert run.data.metrics["params_total"] == sum(p.numel() for p in student.parameters())
    # trained further, the student keeps the label of what it is, not of what this run cuts (nothing)
    further = mlflow.get_run(distill.run(parse_params(distill.Config, {
        **params, "student_init": f"runs:/{run.info.run_id}/model", "embedding_rank": "0", "embedding_exact_rows": "0",
        "intermediate_size": "0", "embedding_weights": "uniform", "embedding_weights_text": "none",
        "transfer_data": "none", "hidden_weight": "0",
        "hidden_layers": "uniform"})))
    assert further.data.tags["mlflow.runName"] == "distill s2-same-r8wc-x20-f48"
    # ... and cut further, it is narrowed and factorised again from what it learned, and named for that
    cut = mlflow.get_run(distill.run(parse_params(distill.Config, {
        **params, "student_init": f"runs:/{run.info.run_id}/model", "embedding_rank": "4", "embedding_exact_rows": "0",
        "intermediate_size": "24", "embedding_weights_text": "none", "transfer_data": "none",
        "hidden_layers": "uniform"})))
    smaller = load_token_classifier(localize_model(f"runs:/{cut.info.run_id}/model"))
    assert cut.data.tags["mlflow.runName"].endswith(" s2-same-r4w-f24")
    assert smaller.get_input_embeddings().rank == 4 and smaller.config.intermediate_size == 24
    assert cut.data.metrics["params_total"] < run.data.metrics["params_total"]
    # the teachers' outputs on the same sentences are cached once, beside the checkpoints, for any later run
    assert "computed and stored" in capsys.readouterr().out
    shallower = mlflow.get_run(distill.run(parse_params(distill.Config, {**params, "student_layers": "1",
                                                                          "hidden_layers": "uniform"})))
    out = capsys.readouterr().out
    # the second member's outputs (logits only) are read for both sets; the first member's are computed again,
    # because its hidden-state layers differ (kept 1:1,2:2 before, uniform 1:2 now)
    assert out.count("read from .findistill/teacher-outputs") == 2 and out.count("computed and stored") == 2
    # the runs record what they started from: the same teacher; the same soft targets, bit for bit, though
    # computed again; another student; without the transfer set, other targets
    tags = [r.data.tags for r in (run, shallower, further)]
    assert len({t["findistill.teacher_sha256"] for t in tags}) == 1
    assert tags[0]["findistill.teacher_targets_sha256"] == tags[1]["findistill.teacher_targets_sha256"] \
        != tags[2]["findistill.teacher_targets_sha256"]
    assert len({t["findistill.init_sha256"] for t in tags}) == 3
    assert all(len(t["findistill.init_sha256"]) == 64 and t["env.cpu_capability"] for t in tags)


def _save(model, tokenizer, folder):
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_quantization_aware_distillation_logs_a_float_student_tagged_for_its_int8_model(mlflow_store, tmp_path,
                                                                                       tiny_classifier, capsys):
    import mlflow

    from findistill.config import parse_params
    from findistill.models.loading import load_token_classifier
    from findistill.stages import distill
    from findistill.tracking.runs import localize_model

    model, tokenizer = tiny_classifier
    teacher = _save(model, tokenizer, tmp_path / "teacher")
    run = mlflow.get_run(distill.run(parse_params(distill.Config, {
        "teacher": str(teacher), "data": "sample", "max_sentences": "24", "epochs": "1", "batch_size": "8",
        "max_length": "64", "student_layers": "1", "quant_aware": "true", "quant_per_channel": "false",
        "quant_reduce_range": "true", "measure_resources": "false"})))
    assert run.info.status == "FINISHED" and run.data.tags["findistill.quant_aware"] == "onnx-int8"
    assert run.data.params["quant_aware"] == "True" and run.data.params["quant_reduce_range"] == "True"
    assert "7-bit weights (a scale per matrix) and uint8 inputs simulated" in capsys.readouterr().out
    student = load_token_classifier(localize_model(f"runs:/{run.info.run_id}/model"))
    assert student.config.num_hidden_layers == 1 and "val_f1" in run.data.metrics
