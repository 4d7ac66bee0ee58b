"""The sweep's samplers: FrontSampler finds a one-dimensional two-objective front in few trials, repeatably,
on float and integer spaces, in resumed studies and after an enqueued neutral trial; other spaces go to TPE."""

from __future__ import annotations

import pickle
import typing

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mia_kd.config import SweepSection
from mia_kd.sweep.samplers import SAMPLERS, FrontSampler, make_sampler

optuna.logging.set_verbosity(optuna.logging.ERROR)
MIN2 = ["minimize", "minimize"]


def convex(a: float, b: float):
    """Objectives whose Pareto set is [a, b]: its ends are (0, (b-a)^2) at a and ((b-a)^2, 0) at b."""
    return lambda x: [(x - a) ** 2, (x - b) ** 2]


def run(study: optuna.Study, objective, n: int, low: float = 0.0, high: float = 1.0, integer: bool = False) -> list:
    xs = []
    for _ in range(n):
        trial = study.ask()
        x = trial.suggest_int("strength", low, high) if integer else trial.suggest_float("strength", low, high)
        study.tell(trial, objective(x))
        xs.append(x)
    return xs


def test_every_configurable_sampler_can_be_made_and_an_unknown_one_is_refused():
    for name in typing.get_args(SweepSection.model_fields["sampler"].annotation):
        sampler = make_sampler(name, seed=0, trials=8, grid={"strength": [0.0, 1.0]})
        assert isinstance(sampler, optuna.samplers.BaseSampler)
    assert set(SAMPLERS) >= set(typing.get_args(SweepSection.model_fields["sampler"].annotation))
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("annealing", seed=0, trials=8)


@pytest.mark.parametrize("case", range(6))
def test_on_a_convex_front_it_finds_both_ends_and_a_middle_point_within_eight_trials(case):
    rng = np.random.default_rng(case)
    a, b = sorted(rng.uniform(0.0, 1.0, 2))
    b = max(b, a + 0.2)
    study = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=case))
    xs = np.array(run(study, convex(a, b), 8, high=max(1.0, b)))
    scale = (b - a) ** 2
    values = np.array([convex(a, b)(x) for x in xs]) / scale
    assert values[:, 0].min() < 0.05 and values[:, 1].min() < 0.05  # both ends of the front, within 5% of its span
    assert np.any((xs > a + 0.25 * (b - a)) & (xs < b - 0.25 * (b - a)))  # and a point in its middle half


def test_the_same_seed_gives_the_same_trials_on_noisy_objectives():
    def noisy(seed):
        rng = np.random.default_rng(seed)
        return lambda x: [x + 0.05 * rng.normal(), (1 - x) ** 2 + 0.05 * rng.normal()]

    def sequence():
        study = optuna.create_study(directions=MIN2, sampler=make_sampler("front", seed=3, trials=12))
        study.enqueue_trial({"strength": 0.0})
        return run(study, noisy(1), 12)

    first = sequence()
    assert first == sequence()
    assert len(set(first)) == len(first)


def test_an_integer_space_is_bisected_on_its_integers_without_repeating_a_point():
    study = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=0))
    xs = run(study, lambda x: [x, (10 - x) ** 2], 13, low=0, high=10, integer=True)
    assert all(isinstance(x, int) for x in xs)
    assert xs[:3] == [0, 10, 5]
    assert sorted(xs[:11]) == list(range(11))  # every integer once before any repeats
    assert all(0 <= x <= 10 for x in xs[11:])


def test_a_resumed_study_continues_as_if_never_stopped(tmp_path):
    from optuna.storages.journal import JournalFileBackend

    objective = convex(0.2, 0.7)
    whole = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=0))
    expected = run(whole, objective, 10)

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    first = optuna.create_study(storage=storage, study_name="s", directions=MIN2, sampler=FrontSampler(seed=0))
    done = run(first, objective, 4)
    resumed = optuna.load_study(storage=storage, study_name="s", sampler=FrontSampler(seed=0))
    assert done + run(resumed, objective, 6) == expected


def test_trials_run_by_another_sampler_are_built_on():
    study = optuna.create_study(directions=MIN2, sampler=optuna.samplers.RandomSampler(seed=0))
    for x in (0.0, 0.5, 1.0):
        study.enqueue_trial({"strength": x})
    run(study, convex(0.0, 0.5), 3)
    study.sampler = FrontSampler(seed=0)
    (x,) = run(study, convex(0.0, 0.5), 1)
    assert x == 0.25  # the interval of the front ([0, 0.5]), not the dominated one, and no end again
    study.enqueue_trial({"strength": 3.0})  # from a wider range searched before (the config changed)
    run(study, convex(0.0, 0.5), 1, high=4.0)
    xs = run(study, convex(0.0, 0.5), 3)  # in today's range, on the front first, none twice
    assert 0.0 < xs[0] < 0.5 and all(0.0 < x < 1.0 for x in xs) and len({0.0, 0.25, 0.5, 1.0, *xs}) == 7


def test_the_enqueued_neutral_point_comes_first_and_is_not_suggested_again():
    study = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=0))
    study.enqueue_trial({"strength": 0.0})
    assert run(study, convex(0.0, 1.0), 3) == [0.0, 1.0, 0.5]
    study = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=0))
    study.enqueue_trial({"strength": 0.4})  # a neutral value inside the range: both ends next
    assert run(study, convex(0.0, 1.0), 3) == [0.4, 0.0, 1.0]


def test_a_running_or_queued_trial_is_not_suggested_again():
    study = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=0))
    study.enqueue_trial({"strength": 0.0})
    running = study.ask()  # the neutral trial, still running (Tune runs trials side by side)
    assert running.suggest_float("strength", 0.0, 1.0) == 0.0
    second = study.ask()
    assert second.suggest_float("strength", 0.0, 1.0) == 1.0
    third = study.ask()
    assert third.suggest_float("strength", 0.0, 1.0) == 0.5
    study.tell(running, state=TrialState.FAIL)


class LowEnd(optuna.samplers.RandomSampler):
    """A fallback that always answers its range's low end, and counts its calls."""

    calls = 0

    def sample_independent(self, study, trial, param_name, param_distribution):
        LowEnd.calls += 1
        return param_distribution.low


def test_a_space_of_several_knobs_or_one_objective_goes_to_the_fallback():
    study = optuna.create_study(directions=MIN2, sampler=FrontSampler(seed=0, fallback=LowEnd()))
    for _ in range(5):
        trial = study.ask()
        x, t = trial.suggest_float("strength", 0, 1), trial.suggest_float("distill.temperature", 1, 4)
        study.tell(trial, [x + t, (1 - x) ** 2])
    # The first strength is the range's end (no other knob seen yet); then the fallback answers everything.
    assert [(t.params["strength"], t.params["distill.temperature"]) for t in study.trials] == [(0.0, 1.0)] * 5
    assert LowEnd.calls == 9
    single = optuna.create_study(sampler=FrontSampler(seed=0, fallback=LowEnd()))
    single.optimize(lambda trial: (trial.suggest_float("strength", 0.5, 1) - 0.7) ** 2, n_trials=3)
    assert [t.params["strength"] for t in single.trials] == [0.5] * 3 and LowEnd.calls == 12


def test_the_sampler_pickles_with_its_state():
    sampler = make_sampler("front", seed=0, trials=8)
    study = optuna.create_study(directions=MIN2, sampler=pickle.loads(pickle.dumps(sampler)))
    assert run(study, convex(0.0, 1.0), 3) == [0.0, 1.0, 0.5]


@pytest.mark.slow  # importing Ray Tune takes a while
def test_tunes_optuna_search_runs_it_on_the_sweeps_define_by_run_space_two_trials_at_a_time():
    pytest.importorskip("ray")
    from ray.tune.search.optuna import OptunaSearch

    from mia_kd.sweep.tune import METRIC, MODE, _Space

    for integer, high in ((False, 0.95), (True, 8)):
        searcher = OptunaSearch(
            space=_Space(method="m", low=0, high=high, integer=integer, shared={}), metric=METRIC, mode=MODE,
            sampler=make_sampler("front", seed=0, trials=6), points_to_evaluate=[{"strength": 0}],
        )
        xs = []
        for first in range(0, 6, 2):
            pair = [f"t{first}", f"t{first + 1}"]
            for trial_id in pair:
                searcher.suggest(trial_id)
            for trial_id in pair:
                x = searcher._ot_trials[trial_id].params["strength"]
                searcher.on_trial_complete(trial_id, {METRIC[0]: x, METRIC[1]: (high - x) ** 2})
                xs.append(x)
        assert xs[:3] == [0, high, high / 2] and len(set(xs)) == 6
