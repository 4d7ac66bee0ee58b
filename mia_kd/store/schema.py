"""The three results tables (docs/architecture.md §7) as explicit Arrow schemas.

Every file carries ``schema_version``; ``sweep_id`` and ``method`` are hive partition keys (in the path, not
in the file); readers unify schemas across versions (a column a file lacks reads
as null). Attack scores are one float64 column per attack, ``score_<attack>``: columns, not names.
"""

from __future__ import annotations

import pyarrow as pa

# 2: selection_privacy (calib), orientation, TPR@1% CI, fpr_step, calib_* metrics
# 3: the teacher's and reference model's records once per prepared state (trials.prepared_key), not per trial
SCHEMA_VERSION = 3
TABLES = ("trials", "metrics", "records", "ensembles")

# Roles whose records depend on the prepared state only (split, teacher, reference model), not on the
# trial: stored once per prepared state under trial_id prepared_id(key), in partition method=PREPARED.
SHARED_ROLES = ("teacher", "reference")
PREPARED = "prepared"


def prepared_id(key: str) -> str:
    """The ``records`` trial id of the teacher's and reference model's rows of prepared state ``key``."""
    return f"prepared-{key}"


TRIALS = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("sweep_id", pa.string()),
        ("trial_id", pa.string()),
        ("config_hash", pa.string()),
        ("status", pa.string()),  # completed | failed
        ("error", pa.string()),
        ("method", pa.string()),
        ("strength", pa.float64()),
        ("privacy_stage", pa.string()),  # train | serve
        ("privacy_params", pa.string()),  # the method's extra parameters, JSON
        ("method_report", pa.string()),  # what the method reports after training (e.g. DP-SGD's epsilon), JSON
        ("epsilon", pa.float64()),  # DP-SGD's epsilon at the reported delta, else null
        ("vulnerability_attack", pa.string()),  # the teacher attack that defines the vulnerable subset
        ("n_vulnerable", pa.int64()),  # size of the vulnerable subset (members the teacher's attack flags)
        ("n_vulnerable_tokens", pa.int64()),
        ("n_transfer", pa.int64()),  # records the student was distilled on
        # Added within schema 3 (older files read null): the transfer set (distill.transfer: members | disjoint),
        # the disjoint pool's size (data.transfer), and the leakage transfer ratio: student / teacher TPR@1% FPR
        # on eval for the attack strongest on the teacher's calib (ties: first in config order), paired
        # bootstrap 95% CI over eval records; NaN where the teacher's TPR is 0 or a fold cannot resolve 1% FPR.
        ("distill_transfer", pa.string()),
        ("n_transfer_pool", pa.int64()),
        ("leakage_transfer_ratio", pa.float64()),
        ("leakage_transfer_ratio_low", pa.float64()),
        ("leakage_transfer_ratio_high", pa.float64()),
        ("leakage_transfer_attack", pa.string()),
        ("optuna_trial", pa.int64()),  # the Optuna trial number in the method's study (sweeps only)
        ("tune_trial_id", pa.string()),
        ("params", pa.string()),  # the full trial config, JSON
        ("seed", pa.int64()),  # seeds the split and the teacher
        ("student_seed", pa.int64()),  # seeds the student's initialisation, batch order and method noise
        ("privacy_objective", pa.string()),  # which statistic: auc | balanced_accuracy | tpr_at_fpr_1pct
        # Selection (what Optuna, fronts, knees, rankings and kept students read): the worst case over the
        # attacks of the student's statistic on calib, the attack chosen there.
        ("selection_privacy", pa.float64()),
        ("selection_privacy_attack", pa.string()),
        # Reported: the eval value (and CI) of that same calib-chosen attack. Lower is better.
        ("objective_privacy", pa.float64()),
        ("objective_privacy_low", pa.float64()),
        ("objective_privacy_high", pa.float64()),
        ("objective_privacy_attack", pa.string()),  # = selection_privacy_attack
        ("objective_utility", pa.float64()),  # student task loss on utility, nats/token (lower is better)
        ("teacher_task_loss", pa.float64()),
        ("student_task_loss", pa.float64()),
        ("reference_task_loss", pa.float64()),
        ("blind_auc", pa.float64()),
        ("blind_auc_low", pa.float64()),
        ("blind_auc_high", pa.float64()),
        ("split_shifted", pa.bool_()),  # the blind check failed and the user allowed it
        ("split_fingerprint", pa.string()),
        ("n_members", pa.int64()),
        ("n_nonmembers", pa.int64()),
        ("n_utility", pa.int64()),
        ("n_public", pa.int64()),
        ("n_truncated", pa.int64()),  # records cut at tokenizer.max_length
        ("n_windowed", pa.int64()),  # records longer than a model's context, scored with a sliding window
        ("membership", pa.string()),  # finetune | pretraining (data.membership)
        ("teacher_cache_hit", pa.bool_()),
        ("reference_cache_hit", pa.bool_()),
        ("teacher_key", pa.string()),
        # What the trial was prepared from (split, teacher, reference model): its teacher and reference
        # ``records`` rows are stored once per key, under trial_id ``prepared-<key>`` (schema 3 on).
        ("prepared_key", pa.string()),
        ("wall_time_s", pa.float64()),
        ("stage_times", pa.string()),  # JSON {stage: seconds}
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("node_id", pa.string()),
        ("prepare_node_id", pa.string()),  # where the trial's prepared state was built (a sweep: its Ray task's node)
        ("hostname", pa.string()),
        ("device", pa.string()),
        ("package_versions", pa.string()),  # JSON {package: version}
        ("git_revision", pa.string()),
    ]
)

METRICS = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("trial_id", pa.string()),
        ("model_role", pa.string()),  # teacher | student
        ("attack", pa.string()),
        ("attack_params", pa.string()),  # JSON of the hyper-parameters chosen on calib
        ("orientation", pa.int8()),  # +1, or -1 where the attack ranks members low on calib (scores flipped)
        ("auc", pa.float64()),
        ("auc_low", pa.float64()),
        ("auc_high", pa.float64()),
        ("balanced_accuracy", pa.float64()),
        ("balanced_accuracy_low", pa.float64()),
        ("balanced_accuracy_high", pa.float64()),
        ("tpr", pa.float64()),
        ("tpr_low", pa.float64()),
        ("tpr_high", pa.float64()),
        ("tnr", pa.float64()),
        ("tnr_low", pa.float64()),
        ("tnr_high", pa.float64()),
        ("tpr_at_fpr_1pct", pa.float64()),  # NaN where 1/n_nonmembers > 1 %
        ("tpr_at_fpr_1pct_low", pa.float64()),
        ("tpr_at_fpr_1pct_high", pa.float64()),
        ("tpr_at_fpr_0_1pct", pa.float64()),  # NaN where 1/n_nonmembers > 0.1 %
        ("fpr_step", pa.float64()),  # 1/n_nonmembers (eval): the smallest FPR step the fold resolves
        ("threshold", pa.float64()),
        ("oracle_accuracy", pa.float64()),  # the study's in-sample threshold: for comparison only
        ("oracle_threshold", pa.float64()),
        ("n_members", pa.int64()),
        ("n_nonmembers", pa.int64()),
        # In-sample on calib (where settings, orientation and threshold were fit): what selection reads.
        ("calib_auc", pa.float64()),
        ("calib_balanced_accuracy", pa.float64()),
        ("calib_tpr_at_fpr_1pct", pa.float64()),
    ]
)

_TOKENS = pa.list_(pa.float32())

RECORDS_BASE = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("trial_id", pa.string()),
        ("model_role", pa.string()),  # teacher | student | reference
        # trial_id: the student's trial; the teacher's and reference model's rows are their prepared
        # state's, trial_id ``prepared-<key>`` (schema 3 on; before, copied into every trial)
        ("record_id", pa.string()),
        ("label", pa.int8()),  # 1 member, 0 non-member, null for utility records
        ("fold", pa.string()),  # calib | eval | utility
        ("n_tokens", pa.int32()),  # predicted tokens
        ("zlib_bytes", pa.int32()),  # zlib-compressed length of the text (what the zlib attack divides by)
        ("token_logprobs", _TOKENS),
        ("lowercase_token_logprobs", _TOKENS),
        ("prefixed_token_logprobs", _TOKENS),
        # Added within schema 3 (older files read null): each shadow model's mean token log-probability of the
        # record and whether the record was in its training set, in shadow order (lira, rmia; shadow teachers on
        # teacher rows, shadow students on student rows).
        ("shadow_scores", pa.list_(pa.float64())),
        ("shadow_inside", pa.list_(pa.bool_())),
    ]
)


def records_schema(attacks: list[str]) -> pa.Schema:
    """``records`` with one ``score_<attack>`` column per configured attack."""
    schema = RECORDS_BASE
    for name in attacks:
        schema = schema.append(pa.field(f"score_{name}", pa.float64()))
    return schema


_STRINGS = pa.list_(pa.string())

# One row per chosen ensemble (``mia-kd ensemble``); partition ``method=ensemble``.
ENSEMBLES = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("ensemble_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("members", _STRINGS),  # trial ids, in the order chosen (repeats merged)
        ("weights", pa.list_(pa.float64())),  # mixture weights, same order, sum 1
        ("with_replacement", pa.bool_()),
        ("max_size", pa.int64()),  # selection steps allowed
        ("constraint", pa.string()),  # the utility constraint as given, e.g. "max_task_loss=5.6"
        ("max_task_loss", pa.float64()),  # the constraint resolved to a task-loss limit (nats/token)
        ("privacy_objective", pa.string()),  # auc | balanced_accuracy | tpr_at_fpr_1pct
        ("attacks", _STRINGS),  # the attacks the objective is the worst case over
        ("unavailable_attacks", _STRINGS),  # configured attacks an ensemble cannot be scored with
        ("selection_privacy", pa.float64()),  # the objective on calib, which the selection minimised
        ("objective_privacy", pa.float64()),  # on eval (lower is better)
        ("objective_privacy_low", pa.float64()),
        ("objective_privacy_high", pa.float64()),
        ("objective_privacy_attack", pa.string()),
        ("objective_utility", pa.float64()),  # task loss on utility, nats/token
        ("objective_utility_low", pa.float64()),
        ("objective_utility_high", pa.float64()),
        ("best_single_trial_id", pa.string()),  # the best single student under the same constraint
        ("best_single_privacy", pa.float64()),  # its objective over the same attacks, on eval
        ("best_single_utility", pa.float64()),
        ("attack_metrics", pa.string()),  # JSON: attack -> eval metrics of the mixture
        ("vote_metrics", pa.string()),  # JSON: attack -> eval metrics of the study's majority vote
        ("command", pa.string()),
    ]
)
