"""The shipped recipe's defaults, in one place: what ``ser-train`` and ``ser-evaluate`` (and the
experiments) use unless told otherwise. Changing a default here changes both commands."""

from __future__ import annotations

#: corrupted copies per training clip (``--augment``; ``augment.training_copies``); chosen by the evaluation
AUGMENT = 1

#: the pretrained encoders under the classifier, side by side (``--encoder``; none: the handcrafted features
#: alone) and each one's transformer blocks whose frames, side by side, are pooled (``--encoder-blocks``); see
#: models/README.md for how they were chosen
ENCODER = "smart-turn-v3.2+whisper-base"
ENCODER_BLOCKS = ((1, 2, 3), (2,))

#: causal per-speaker normalisation (``--speaker-norm``) and the training mean's weight in its running mean,
#: in clips (``--norm-prior``); see reports/ablation.md
SPEAKER_NORM = "none"
NORM_PRIOR = 3.0
#: the centroid offset (``--speaker-norm centroid``): its shrink constant in clips (``--shrink-clips``: the offset
#: is the sum of a source's residuals over n + 10) and how the adapted and unadapted heads combine (``--combine``)
CENTROID_SHRINK = 10.0
CENTROID_COMBINE = "mean_logits"
#: the running mean weights about the last 30 clips (``--norm-memory``): a product choice, not tuned on the
#: folds, so that a source whose speaker changes is re-learned within tens of utterances
NORM_MEMORY = 30.0

#: the classifier (``model.Hyperparameters``'s defaults): hidden layer sizes (``--hidden``), L2 penalty
#: (``--alpha``), epochs at most (``--max-iter``), and MLPs fitted with consecutive seeds whose logits are
#: averaged in one graph (``--members``)
HIDDEN = (128,)
ALPHA = 0.3
MAX_ITER = 300
MEMBERS = 3
#: the MLP's optimiser: Adam's step size, mini-batch size, and early stopping on a held-out fraction of the
#: training rows after this many epochs without improvement
LEARNING_RATE_INIT = 1e-3
BATCH_SIZE = 64
EARLY_STOPPING = True
VALIDATION_FRACTION = 0.15
N_ITER_NO_CHANGE = 20
