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
    assert len(joined) == len(set(joined))  # a sentence two sources share is kept once
    assert sum(j.startswith("Reuters reported") for j in joined) == n  # the text file gave its share
    train = {" ".join(s.tokens) for s in data.splits["train"][:5]}
    assert 0 < sum(j in train for j in joined) <= 5  # the corpus gave what it had outside the evaluation
    assert len(joined) > n + 5  # and 'augment' gave its share too
