"""The sweep's search router without Ray: methods sharing the baseline wait for it, then are given it."""

from __future__ import annotations

from ray.tune.search import Searcher

from mia_kd.sweep.tune import _MethodRouter


class _Fake(Searcher):
    """A method's searcher: suggests its name and a counter, records what it was told."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.told, self._ot_study = name, [], f"study-{name}"

    def suggest(self, trial_id):
        return {"method": self.name, "trial": trial_id}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.told.append((trial_id, error))


class _Give:
    def __init__(self, ok: bool) -> None:
        self.ok, self.calls = ok, []

    def __call__(self, studies):
        self.calls.append(dict(studies))
        return self.ok


def _router(give: _Give) -> _MethodRouter:
    searchers = {name: _Fake(name) for name in ("none", "dp_sgd", "temperature", "red_list")}
    remaining = {"none": 1, "dp_sgd": 2, "temperature": 2, "red_list": 2}
    return _MethodRouter(searchers, remaining, held={"temperature", "red_list"}, give=give)


def test_held_methods_wait_for_the_baseline_and_are_given_it():
    give = _Give(ok=True)
    router = _router(give)
    first, second = router.suggest("t1"), router.suggest("t2")
    assert first["method"] == "none", "the baseline is the first suggestion"
    assert second["method"] == "dp_sgd", "a method that does not share the baseline runs beside it"
    router.suggest("t3")  # dp_sgd's second
    assert router.suggest("t4") is None, "held methods get nothing while the baseline runs (None: ask again)"
    assert not give.calls
    router.on_trial_complete("t2", {"x": 1})  # another method's trial ending releases nothing
    assert router.suggest("t4") is None and not give.calls
    router.on_trial_complete("t1", {"x": 1})
    assert give.calls == [{"temperature": "study-temperature", "red_list": "study-red_list"}]
    rest = [router.suggest(f"t{i}") for i in range(4, 8)]
    assert sorted(s["method"] for s in rest) == ["red_list", "red_list", "temperature", "temperature"]
    assert router.suggest("t8") == Searcher.FINISHED
    assert router.searchers["none"].told == [("t1", False)]


def test_turns_follow_the_config_order_when_a_method_runs_out():
    """Round-robin in config order: a method that runs out does not move the others' turns forward."""
    searchers = {name: _Fake(name) for name in ("none", "dp_sgd", "bottleneck", "nonorm", "red_list")}
    router = _MethodRouter(searchers, {"none": 1, "dp_sgd": 3, "bottleneck": 3, "nonorm": 1, "red_list": 3})
    got = [router.suggest(f"t{i}")["method"] for i in range(11)]
    assert got == ["none", "dp_sgd", "bottleneck", "nonorm", "red_list", "dp_sgd", "bottleneck", "red_list",
                   "dp_sgd", "bottleneck", "red_list"]
    assert router.suggest("t11") == Searcher.FINISHED


def test_a_failed_baseline_releases_the_held_methods_without_it():
    give = _Give(ok=True)
    router = _router(give)
    router.suggest("t1")
    router.on_trial_complete("t1", None, error=True)
    assert not give.calls, "nothing to give"
    methods = [router.suggest(f"t{i}")["method"] for i in range(2, 8)]
    assert sorted(methods) == ["dp_sgd", "dp_sgd", "red_list", "red_list", "temperature", "temperature"]
    assert router.suggest("t8") == Searcher.FINISHED


def test_the_longest_expected_trials_go_first():
    """Once trials complete, the method whose trials took longest gets the next slot (unseen methods are
    expected to take the mean of all), so the long trials do not end the sweep with a slot idle."""
    searchers = {name: _Fake(name) for name in ("none", "red_list", "dp_sgd", "nonorm")}
    router = _MethodRouter(searchers, {"none": 1, "red_list": 3, "dp_sgd": 3, "nonorm": 1})
    assert [router.suggest(f"t{i}")["method"] for i in range(3)] == ["none", "red_list", "dp_sgd"]
    router.on_trial_complete("t0", {"seconds": 20.0})
    router.on_trial_complete("t1", {"seconds": 10.0})
    router.on_trial_complete("t2", {"seconds": 60.0})
    assert router.suggest("t3")["method"] == "dp_sgd", "60 s expected, against 20 (none's) and 10"
    router.on_trial_complete("t3", None, error=True)  # a failure says nothing about duration
    assert router._expected("dp_sgd") == 60.0
    got = [router.suggest(f"t{i}")["method"] for i in range(4, 8)]
    # nonorm, unseen, is expected to take the mean (30 s): before red_list (10 s)
    assert got == ["dp_sgd", "nonorm", "red_list", "red_list"]
    assert router.suggest("t8") == Searcher.FINISHED
