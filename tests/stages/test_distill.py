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
