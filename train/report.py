"""Short markdown report of a trained model, rendered from its card."""

from __future__ import annotations


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def render(card: dict, png_name: str | None = None) -> str:
    m = card.get("metrics") or {}
    t = card["training"]
    lines = [
        f"# ser-live model report ({card['created'][:10]})",
        "",
        f"Labels (ONNX output order): {', '.join(card['labels'])}. "
        f"Features v{card['feature_version']} ({card['feature_size']} values). "
        f"MLP {t['hyperparameters']['hidden']} alpha {t['hyperparameters']['alpha']}, seed {t['seed']}, "
        f"class balance by {t['balancing']}.",
        "",
    ]
    aug = t.get("augmentation") or {}
    if aug.get("copies"):
        lines += [
            f"Training augmentation: {aug['copies']} corrupted cop{'y' if aug['copies'] == 1 else 'ies'} of every clip "
            "besides the clean one (microphone floor, white/pink/babble noise at an SNR relative to the active speech level, "
            "gain, telephone band; seeded per clip, applied before the runtime's cut). CV folds train on the "
            "augmented training side and test on clean held-out clips.",
            "",
        ]
    norm = card.get("speaker_norm")
    if norm and norm.get("method") == "centroid_offset":
        lines += [
            f"Speaker adaptation: centroid offset (`{norm['method']}`, shrink {norm['shrink_clips']} clips, heads combined "
            f"by `{norm['combine']}`): an unadapted head (`{norm['unadapted_model']['file']}`) predicts each utterance's "
            "class; the source's offset is the sum of (utterance minus that class's training centroid) over its "
            "utterances so far, this one included, divided by their number plus the shrink; the model's head, trained "
            "on rows with each training speaker's offset removed, classifies the utterance minus the offset. "
            "Evaluation treats every speaker's clips as one session in a seeded arrival order; in CV the centroids "
            "come from the training folds only.",
            "",
        ]
    elif norm:
        lines += [
            f"Speaker normalisation: causal running mean (`{norm['method']}`, prior {norm['prior_clips']} clips): the "
            "runtime subtracts the running mean of the current source's utterances so far (this one included), shrunk "
            "towards the training mean stored in the card. Evaluation and the clean training rows treat every speaker's "
            "clips as one session in a seeded arrival order, the augmented training copy as short sessions of 1-10 "
            "clips; in CV the training mean comes from the training folds only.",
            "",
        ]
    lines += [
        "| corpus | clips | speakers | labels |",
        "|---|---:|---:|---|",
    ]
    for name, c in card["corpora"].items():
        lines.append(f"| {name} | {c['clips']} | {len(c['speakers'])} | {', '.join(c['labels'])} |")
    lines.append("")
    cv = m.get("cross_validation")
    if not cv:
        lines += ["Not evaluated (`--no-eval`).", ""]
    else:
        lines += [
            f"## Speaker-independent cross-validation ({cv['folds']} folds grouped by speaker, pooled predictions)",
            "",
            "No speaker is in both the training and the test side of any fold. Per-corpus figures are computed on",
            "that corpus's clips, over the labels it has (a prediction of a label the corpus lacks counts as wrong).",
            "",
            "| data | n | classes | accuracy % | UAR % | macro-F1 % |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows = [("all", cv["overall"])] + list(cv["per_corpus"].items())
        for name, r in rows:
            lines.append(f"| {name} | {r['n']} | {len(r['labels'])} | {_pct(r['accuracy'])} | {_pct(r['uar'])} | {_pct(r['macro_f1'])} |")
        lines += ["", "Per-class recall % (all data): " + ", ".join(f"{k} {_pct(v)}" for k, v in cv["overall"]["recall"].items()), ""]
        cal = cv.get("calibration")
        if cal:
            lines += [f"Calibration: expected calibration error of the top-class probability (pooled CV, {cal['bins']} bins) "
                      f"{_pct(cal['ece'])}% raw, {_pct(cal['ece_after_temperature'])}% after temperature scaling with "
                      f"T = {cal['temperature']:g} (fitted on these out-of-fold probabilities and built into the final model).", ""]
        xc = m.get("cross_corpus") or {}
        if xc:
            lines += [
                "## Cross-corpus (train on one corpus, test on the other, shared labels only)",
                "",
                "| train -> test | n | classes | accuracy % | UAR % | macro-F1 % |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for name, r in xc.items():
                lines.append(f"| {r['train']} -> {r['test']} | {r['n']} | {len(r['labels'])} | {_pct(r['accuracy'])} | {_pct(r['uar'])} | {_pct(r['macro_f1'])} |")
            lines.append("")
        if png_name:
            lines += [f"Confusion matrices: `{png_name}`.", ""]
    s = t.get("skipped", {})
    lines += [
        f"Skipped: {s.get('unknown_names', 0)} unrecognised file names, {s.get('label_not_in_set', 0)} clips outside the label set, "
        f"{s.get('failed', 0)} unreadable; {s.get('no_speech_whole_clip', 0)} clips had no speech detected and were used whole.",
        "",
        f"Licence: {card['licence']}.",
        "",
    ]
    return "\n".join(lines)
