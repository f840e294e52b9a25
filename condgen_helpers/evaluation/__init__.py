"""How the course measures samples: an evaluation classifier, the figures built on it, and the
protocol that scores a model against real data's floor (notebook 06 teaches it).

``classifier`` (the evaluation CNN), ``metrics`` (FD, KID, precision/recall, copying, the ring's
modes), ``protocol`` (evaluation sets, the floor and its interval, scoring a model, guidance sweeps),
``likelihood`` and ``attribute`` (the extra figures of the VAE family and of the attribute model).
Everything takes data as a :class:`~condgen_helpers.data.Splits` object, or a dataset's name.
"""

from .attribute import (
    attribute_control,
    attribute_figures,
    correlation_null,
    within_class_correlation,
)
from .classifier import (
    WEIGHTS_DIR,
    EvalClassifier,
    accuracy,
    classifier_features,
    classifier_file,
    load_classifier,
    predict,
    train_classifier,
)
from .likelihood import latent_usage, likelihood_figures
from .metrics import (
    COPY_QUANTILE,
    PR_MAX,
    class_shares,
    copy_ratios,
    frechet_distance,
    kid,
    mean_pairwise_distance,
    memorisation,
    nearest_distance,
    precision_recall,
    ring_metrics,
)
from .protocol import (
    FLOOR_SPLIT,
    GUIDANCE_GRID,
    REFERENCE_SPLIT,
    SCALAR_FIGURES,
    EvaluationSets,
    check_images,
    evaluate_model,
    evaluation_sets,
    floor_distance,
    guidance_sweep,
    image_metrics,
    pick_guidance,
    real_floor,
    repeated_digits,
    selection_splits,
)

__all__ = [
    "COPY_QUANTILE", "FLOOR_SPLIT", "GUIDANCE_GRID", "PR_MAX", "REFERENCE_SPLIT", "SCALAR_FIGURES",
    "WEIGHTS_DIR", "EvalClassifier", "EvaluationSets", "accuracy", "attribute_control", "attribute_figures",
    "check_images", "class_shares", "classifier_features", "classifier_file", "copy_ratios", "correlation_null",
    "evaluate_model", "evaluation_sets", "floor_distance", "frechet_distance", "guidance_sweep", "image_metrics", "kid",
    "latent_usage", "likelihood_figures", "load_classifier", "mean_pairwise_distance", "memorisation",
    "nearest_distance", "pick_guidance", "precision_recall", "predict", "real_floor", "repeated_digits", "selection_splits", "ring_metrics",
    "train_classifier", "within_class_correlation",
]
