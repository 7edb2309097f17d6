"""Relational transfer: clause counting, the learner, predicate mapping, metrics and loaders."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from tlbench import ConfigError, IncompatibleTaskError
from tlbench.datasets.relational import (
    BOOSTSRL_DOMAINS,
    DOMAINS,
    _treeboostler_negatives,
    infer_types,
    load_boostsrl,
    load_domain,
    parse_atom,
    parse_atoms,
    parse_modes,
    read_boostsrl,
    relational,
    relational_boostsrl,
)
from tlbench.datasets.toy import TOY_RELATIONAL_MAPPING, toy_relational
from tlbench.errors import DataError
from tlbench.methods.relational import relational_metrics
from tlbench.methods.relational.clauses import (
    CHAIN,
    RECURSIVE,
    Clause,
    World,
    enumerate_clauses,
)
from tlbench.methods.relational.learner import RelationalScratch, example_constants
from tlbench.methods.relational.predicate_mapping import PredicateMapping
from tlbench.methods.relational.rdn_boost import value_types
from tlbench.task import Domain, RelationalData, TransferTask

REPO = Path(__file__).resolve().parents[1]


def _one_fold(task: TransferTask, fold: int = 1) -> TransferTask:
    """The task with target training data cut to one fold (the little-data setting)."""
    keep = np.flatnonzero(task.target.X.fold == fold)
    return replace(task, target=task.target.subset(keep))


def _auc(method, task) -> float:
    return relational_metrics(task.test.y, method.predict_proba(task.test.X)[:, 1])["auc_roc"]


# --------------------------------------------------------------------------- metrics


def test_metrics_match_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(5, 80))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        p = np.round(rng.random(n), 1)  # many ties
        m = relational_metrics(y, p)
        assert m["auc_roc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert m["auc_pr"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
        q = np.clip(p, 1e-6, 1 - 1e-6)
        cll = np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
        assert m["cll"] == pytest.approx(cll)
    with pytest.raises(ValueError, match="probabilities"):
        relational_metrics(np.array([0, 1]), np.array([0.5]))


# --------------------------------------------------------------------------- clauses


def test_clause_features_equal_brute_force_groundings():
    task = toy_relational(n_entities=12, n_folds=2)
    data = task.source.X
    world = World(data)
    idx = world.example_index(data.examples, data.target)
    facts = {p: set(a) for p, a in data.facts.items()}
    people = world.entities["person"]
    for clause in enumerate_clauses(data.predicates, data.target, recursive=False):
        got = world.evaluate(clause, idx)
        for n, (x,) in enumerate(data.examples[:12]):
            # ground the path by brute force: the set of constants reachable from x
            front = {x}
            for pred, i, j in clause.steps:
                front = {a[j] for a in facts[pred] if a[i] in front}
            want = bool(front & {a[0] for a in facts[clause.end]}) if clause.end else bool(front)
            assert got[n] == want, clause.describe(data.target, 1)
    assert len(people) == 24  # two worlds of 12: folds do not share constants


def test_recursive_clause_reads_the_other_labels():
    task = toy_relational(n_entities=12, n_folds=2)
    data, y = task.source.X, task.source.y
    world = World(data, values=y)
    idx = world.example_index(data.examples, data.target)
    infected = {ex[0] for ex, label in zip(data.examples, y, strict=True) if label}
    clause = Clause(RECURSIVE, (("contact", 0, 1),))
    got = world.evaluate(clause, idx)
    for n, (x,) in enumerate(data.examples):
        near = {b for a, b in data.facts["contact"] if a == x and b != x}
        assert (got[n] > 0.5) == bool(near & infected)
    assert clause.describe("infected", 1) == "infected(A) :- contact(A,B), infected(B), B!=A"
    assert Clause(1, (), None, "fan").describe("t", 2) == "t(A,fan)"
    assert Clause(1, (), None, "fan").rename({"t": "u"}) is None  # constants never map


def test_chain_clause_and_description():
    data = RelationalData(
        predicates={"r": ("a", "b"), "s": ("b", "a"), "t": ("a", "a")},
        facts={"r": (("x", "m"),), "s": (("m", "y"),)},
        target="t",
        examples=(("x", "y"), ("y", "x"), ("x", "x")),
    )
    world = World(data)
    idx = world.example_index(data.examples, "t")
    chain = Clause(CHAIN, (("r", 0, 1), ("s", 0, 1)))
    np.testing.assert_array_equal(world.evaluate(chain, idx), [1, 0, 0])
    assert chain.describe("t", 2) == "t(A,B) :- r(A,C), s(C,B)"
    assert chain.rename({"r": "r2", "s": None}) is None
    assert chain.rename({"r": "r2", "s": "s2"}).predicates() == {"r2", "s2"}
    with pytest.raises(DataError, match="unknown constant"):
        world.example_index([("x", "nobody")], "t")


# --------------------------------------------------------------------------- methods


def test_planted_mapping_is_recovered():
    task = toy_relational(n_entities=40)
    method = PredicateMapping().fit(task.without_test())
    mapping = method.mapping_
    assert mapping["infected"] == "compromised"
    for pred in ("contact", "carrier", "vaccinated"):  # the predicates the label depends on
        assert mapping[pred] == TOY_RELATIONAL_MAPPING[pred]
    for pred, mapped in mapping.items():  # never a wrong predicate (the distractor may drop)
        assert mapped in (None, TOY_RELATIONAL_MAPPING[pred])
    assert method.type_mapping_ == {"person": "host"}
    assert method.diagnostics_["mapping"] == mapping
    json.dumps(method.diagnostics_)  # the runner stores it in result.json


def test_beam_search_finds_the_same_mapping():
    task = toy_relational(n_entities=40).without_test()
    exhaustive = PredicateMapping().fit(task)
    beam = PredicateMapping(max_exhaustive=1, beam_width=3).fit(task)
    assert beam.diagnostics_["search"] == "beam (width 3)"
    assert exhaustive.diagnostics_["search"] == "exhaustive"
    assert beam.mapping_ == exhaustive.mapping_


def test_transfer_beats_scratch_with_one_training_fold():
    gains = []
    for seed in range(3):
        task = toy_relational(n_entities=20, seed=seed)
        small = _one_fold(task).without_test()
        scratch = _auc(RelationalScratch().fit(small), task)
        transfer = _auc(PredicateMapping().fit(small), task)
        gains.append(transfer - scratch)
    assert np.mean(gains) > 0.03


@pytest.mark.parametrize("revision", ["none", "weights", "full"])
def test_revision_options(revision):
    task = toy_relational(n_entities=20)
    method = PredicateMapping(revision=revision).fit(task.without_test())
    proba = method.predict_proba(task.test.X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert _auc(method, task) > 0.8
    if revision == "none":
        assert method.diagnostics_["clauses_added"] == []


@pytest.mark.parametrize("method", ["relational_scratch", "predicate_mapping"])
def test_permuted_test_labels_leave_the_predictions_unchanged(spy_run, tmp_path, method):
    # through the runner, which holds the test labels: fails if fit sees the test fold (its
    # examples or labels) or if inference reads the labels of the atoms it predicts
    overrides = [f"method={method}", "dataset=toy_relational", "dataset.n_entities=20"]
    seen, record = spy_run(tmp_path / "plain", overrides)
    (fit_task,) = seen["fit"]
    test = seen["task"].test
    assert fit_task.test is None
    assert not set(test.X.examples) & set(fit_task.target.X.examples)
    perm = np.random.default_rng(0).permutation(len(test))
    assert np.mean(test.y[perm] != test.y) > 0.2  # a permutation that moves labels
    permuted, again = spy_run(tmp_path / "permuted", overrides, corrupt_test=lambda y: y[perm])
    np.testing.assert_array_equal(permuted["predict"][0], seen["predict"][0])
    assert seen["proba"] and len(permuted["proba"]) == len(seen["proba"])
    for a, b in zip(permuted["proba"], seen["proba"], strict=True):
        np.testing.assert_array_equal(a, b)
    # the runner scored with the permuted labels: the ranking metrics moved
    assert again["metrics"]["auc_roc"] != record["metrics"]["auc_roc"]


def test_deterministic():
    task = toy_relational(n_entities=20, seed=3)
    a = PredicateMapping().fit(task.without_test()).predict_proba(task.test.X)
    b = PredicateMapping().fit(task.without_test()).predict_proba(task.test.X)
    np.testing.assert_array_equal(a, b)


def _tiny(name, target_types, positives=True):
    types = {"r": target_types, "u": (target_types[0],)}
    examples = (("p", "q"), ("q", "p"), ("p", "p"))
    return RelationalData(
        predicates={**types, "t": target_types},
        facts={"r": (("p", "q"),), "u": (("p",),)},
        target="t",
        examples=examples,
        fold=np.zeros(3, dtype=int),
        name=name,
    ), np.array([1 if positives else 0, 0, 0])


def test_bad_input_errors_name_the_predicate():
    with pytest.raises(DataError, match=r"fact r\('a',\) has 1 arguments"):
        RelationalData(
            predicates={"r": ("x", "x"), "t": ("x",)},
            facts={"r": (("a",),)},
            target="t",
            examples=(("a",),),
        )
    with pytest.raises(DataError, match="'t'"):
        RelationalData(predicates={"r": ("x",)}, facts={}, target="t", examples=())
    src, ys = _tiny("src", ("a", "b"))
    tgt, yt = _tiny("tgt", ("c", "c"))
    task = TransferTask(Domain(src, ys), Domain(tgt, yt), None, "relational", 2)
    with pytest.raises(IncompatibleTaskError, match="no type-consistent mapping of t"):
        PredicateMapping().fit(task)
    tgt0, y0 = _tiny("tgt", ("c", "d"), positives=False)
    task = TransferTask(Domain(src, ys), Domain(tgt0, y0), None, "relational", 2)
    with pytest.raises(DataError, match="target predicate 't' has no positive"):
        PredicateMapping().fit(task)
    with pytest.raises(ConfigError, match="revision"):
        PredicateMapping(revision="maybe").fit(toy_relational(n_entities=20).without_test())
    fitted = RelationalScratch().fit(toy_relational(n_entities=20).without_test())
    other = replace(src, target="r", predicates={**src.predicates})
    with pytest.raises(DataError, match="predicts 'compromised'"):
        fitted.predict(other)


def test_unlabeled_target_is_refused():
    task = toy_relational(n_entities=20)
    task = replace(task, target=task.target.unlabeled()).without_test()
    with pytest.raises(IncompatibleTaskError, match="labeled"):
        RelationalScratch().fit(task)


def test_runs_through_the_runner(tmp_path):
    from hydra import compose, initialize_config_dir

    from tlbench.runner import run

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose(
            config_name="config",
            overrides=["method=predicate_mapping", "dataset=toy_relational"],
        )
    record = run(cfg, tmp_path)
    assert record["status"] == "ok"
    assert record["diagnostics"]["mapping"]["infected"] == "compromised"


# --------------------------------------------------------------------------- loaders


def test_infer_types_joins_positions_sharing_constants():
    atoms = {
        "follows": [["a1", "a2"], ["a2", "a3"]],
        "type": [["a1", "fan"], ["a2", "fan"], ["a3", "pro"]],
        "tweets": [["a1", "w1"], ["a3", "w2"], ["a2", "fan"]],  # one shared name is chance
    }
    types = infer_types(atoms)
    assert types["follows"] == (types["type"][0],) * 2 == ("follows_0", "follows_0")
    assert types["tweets"][0] == "follows_0"
    assert types["type"][1] != types["tweets"][1]


# positives per fold of the usual target predicate (SOURCE.md), then duplicates in the files
SOURCE_POSITIVES = {
    "imdb": ("workedunder", [56, 58, 178, 45, 45]),
    "uwcse": ("advisedby", [35, 20, 9, 33, 16]),
    "cora": ("samevenue", [368, 771, 581, 747, 550]),
    "twitter": ("accounttype", [126, 156]),
    "yeast": ("proteinclass", [87, 104, 92, 86]),
    "nell_sports": ("teamplayssport", [397]),
    "nell_finances": ("companyeconomicsector", [778]),
    "facebook": ("edge", [5038, 3386, 3312, 540, 292]),
}
STORED_NEGATIVES = {
    "imdb": [3308, 3423, 3543, 1891, 2071],
    "uwcse": [1814, 341, 91, 1488, 345],
    "cora": [688, 544, 2222, 1068, 500],
}


@pytest.mark.realdata
@pytest.mark.parametrize("domain", DOMAINS)
def test_loader_counts_match_source(data_dir, domain):
    target, positives = SOURCE_POSITIVES[domain]
    data, y, info = load_domain(data_dir, domain, neg_ratio=2)
    assert data.target == target and info["target_predicate"] == target
    assert int(y.sum()) + info["duplicate_positives_removed"] == sum(positives)
    if len(positives) > 1:
        assert info["n_folds"] == len(positives)
    else:
        assert info["n_folds"] == 3  # one world split into folds
    if domain in STORED_NEGATIVES:
        per_fold = [int(np.sum((data.fold == k) & (y == 0))) for k in range(len(positives))]
        assert sum(per_fold) + info["stored_negatives_removed"] == sum(STORED_NEGATIVES[domain])
        if domain != "cora":  # Cora's files repeat atoms
            assert per_fold == STORED_NEGATIVES[domain]
        assert info["negatives"].startswith("stored")
    else:
        assert np.sum(y == 0) <= 2 * np.sum(y) + len(positives)
        assert info["negatives"].startswith("closed-world")
    leaks = {"twitter": ["typeaccount"], "yeast": ["classprotein"]}
    leaks["nell_finances"] = ["economicsectorcompany"]
    assert info["dropped_predicates"] == leaks.get(domain, [])
    assert target not in data.facts


@pytest.mark.realdata
@pytest.mark.parametrize("domain", DOMAINS)
def test_type_constants_ignore_generated_negatives_only_where_they_break_types(data_dir, domain):
    # every training set the relational tables use (all folds but one, one fold): under
    # closed-world negatives reading a type's constants from the positives changes nothing;
    # under the recorded TreeBoostler runs' negatives it changes Twitter only
    for negatives in ("closed_world", "treeboostler"):
        data, y, _ = load_domain(data_dir, domain, negatives=negatives)
        changed = clause_changed = False
        for k in np.unique(data.fold):
            for keep in (data.fold != k, data.fold == k):
                sub = data.subset(np.flatnonzero(keep))
                with_y = value_types(sub, 10, y[keep])
                changed |= with_y != value_types(sub, 10)
                # the clause learner's value arguments (200 constants at most): under those
                # negatives Yeast's protein class holds proteins too, and Twitter's accounts
                with_y = example_constants(sub, 200, y[keep])
                clause_changed |= with_y != example_constants(sub, 200)
        assert changed == (negatives == "treeboostler" and domain == "twitter"), negatives
        breaks_types = negatives == "treeboostler" and domain in ("twitter", "yeast")
        assert clause_changed == breaks_types, negatives


@pytest.mark.realdata
def test_relational_task_folds_and_errors(data_dir):
    task = relational(
        source="imdb", target="uwcse", data_dir=data_dir, test_fold=2, n_train_folds=1
    )
    assert set(task.test.X.fold) == {2} and set(task.target.X.fold) == {3}
    assert task.info["train_folds"] == [3]
    with pytest.raises(ConfigError, match="no domain 'webkb'"):
        relational(source="webkb", target="uwcse", data_dir=data_dir)
    with pytest.raises(IncompatibleTaskError):
        relational(source="imdb", target="imdb", data_dir=data_dir)
    with pytest.raises(ConfigError, match="no predicate 'nope'"):
        relational(source="imdb", target="uwcse", target_predicate="nope", data_dir=data_dir)
    with pytest.raises(ConfigError, match="test_fold"):
        relational(source="imdb", target="twitter", test_fold=2, data_dir=data_dir)


@pytest.mark.realdata
def test_imdb_to_uwcse_transfer(data_dir):
    task = relational(source="imdb", target="uwcse", data_dir=data_dir, test_fold=1)
    method = PredicateMapping().fit(task.without_test())
    assert method.mapping_["director"] == "professor"
    assert method.mapping_["actor"] == "student"
    assert _auc(method, task) > 0.9


def test_treeboostler_negatives_pair_subjects_with_objects_and_subjects():
    pos = [("a1", "fan"), ("a2", "pro"), ("a2", "fan")]
    neg = _treeboostler_negatives(pos, "accounttype")
    # candidates: objects {fan, pro} and subjects {a1, a2}; each subject's true objects left out
    assert neg == [("a1", "a1"), ("a1", "a2"), ("a1", "pro"), ("a2", "a1"), ("a2", "a2")]
    with pytest.raises(DataError, match="'t' has 1"):
        _treeboostler_negatives([("a",)], "t")


@pytest.mark.realdata
def test_treeboostler_negatives_match_the_recorded_twitter_counts(data_dir):
    # TreeBoostler's experiments-transfer/7_yeast_twitter log: 126 / 16128 and 156 / 24648
    data, y, info = load_domain(data_dir, "twitter", negatives="treeboostler")
    per_fold = [
        (int(np.sum((data.fold == k) & (y == 1))), int(np.sum((data.fold == k) & (y == 0))))
        for k in (0, 1)
    ]
    assert per_fold == [(126, 16128), (156, 24648)]
    assert info["negatives"].startswith("TreeBoostler")
    with pytest.raises(ConfigError, match="dataset.negatives"):
        load_domain(data_dir, "twitter", negatives="open_world")


# --------------------------------------------------------------------------- BoostSRL files


def test_parse_atom_reads_names_and_quoted_constants():
    assert parse_atom("advisedby(person100, person104).", "f") == (
        "advisedby",
        ("person100", "person104"),
    )
    assert parse_atom('teamplayssport("texans","ice hockey").\r', "f") == (
        "teamplayssport",
        ("texans", "ice hockey"),
    )
    assert parse_atom("female_gender(aalexandra).", "f") == ("female_gender", ("aalexandra",))


@pytest.mark.parametrize(
    "line",
    [
        "advisedby(person1, person2)",  # no final dot
        "advisedby(person1, person2.",  # no closing parenthesis
        "advisedby(person1, ).",  # empty argument
        "advisedby().",  # no argument
        "advisedby(f(a), b).",  # not a constant
        "Advisedby(a, b).",  # a variable, not a predicate name
        "mode: advisedby(+person, +person).",
    ],
)
def test_malformed_atom_lines_name_file_and_line(line):
    text = "advisedby(p1, p2).\n// advisedby(commented, out).\n\n" + line + "\n"
    with pytest.raises(DataError, match=r"train_pos\.txt, line 4"):
        parse_atoms(text, "train_pos.txt")


def test_parse_atoms_skips_comments_and_checks_arity():
    text = "/* a block\nr(x).\n*/\nr(a, b).\n//r(c).\n  \nu(a).\r\n"
    assert parse_atoms(text, "f") == {"r": [("a", "b")], "u": [("a",)]}
    with pytest.raises(DataError, match=r"f, line 2: 'r' has 1 arguments here and 2 before"):
        parse_atoms("r(a, b).\nr(c).\n", "f")


def test_parse_modes_types_and_conflicts():
    text = (
        "setParam: treeDepth=3.\nmode: movie(+movie, -person).\nmode: movie(-Movie, +person).\n"
        "mode: hasposition(+Person, #Position!1).\nmode: recursive_actor(`person).\n"
        "/*\nmode: gone(+x).\n*/\n"
    )
    assert parse_modes(text, "bk") == {
        "movie": ("movie", "person"),
        "hasposition": ("person", "position"),
        "recursive_actor": ("person",),
    }
    with pytest.raises(DataError, match=r"bk, line 2: modes of 'r' disagree"):
        parse_modes("mode: r(+a, +b).\nmode: r(+a, +c).\n", "bk")


def _write_zip(path: Path, files: dict[str, str]) -> Path:
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("__MACOSX/IMDB/._train_pos.txt", "\x00\x01 binary junk")
    return path


BK = (
    "setParam: treeDepth=3.\nmode: actor(+person).\nmode: director(+person).\n"
    "mode: movie(+movie, -person).\nmode: movie(-movie, +person).\n"
    "mode: workedunder(+person, +person).\n"
)


def _world(k: int) -> tuple[str, str, str]:
    """Facts, positives and negatives of one small IMDB-like world (two movies)."""
    a, b, d, e = (f"{x}{k}" for x in "abde")
    facts = (
        f"actor({a}).\nactor({b}).\ndirector({d}).\ndirector({e}).\n//director({a}).\n"
        f"movie(m{k}, {a}).\nmovie(m{k}, {d}).\nmovie(n{k}, {b}).\nmovie(n{k}, {e}).\n"
    )
    pos = f"workedunder({a}, {d}).\nworkedunder({b}, {e}).\n"
    neg = f"workedunder({a}, {e}).\nworkedunder({b}, {d}).\nworkedunder({a}, {b}).\n"
    return facts, pos, neg


def test_boostsrl_fold_layout_reads_each_test_folder_as_a_fold(tmp_path):
    files = {}
    for k in (1, 2, 3):
        facts, pos, neg = _world(k)
        root = f"imdb/Fold{k}"
        files[f"{root}/imdb_bk.txt"] = BK
        files[f"{root}/test/test_bk.txt"] = 'import: "../imdb_bk.txt".'
        files[f"{root}/test/test_facts.txt"] = facts
        files[f"{root}/test/test_pos.txt"] = pos
        files[f"{root}/test/test_neg.txt"] = neg
        others = [_world(j) for j in (1, 2, 3) if j != k]
        for kind, i in (("facts", 0), ("pos", 1), ("neg", 2)):
            files[f"{root}/train/train_{kind}.txt"] = "".join(w[i] for w in others)
    _write_zip(tmp_path / "relational_boostsrl" / "imdb_workedunder.zip", files)
    data, y, info = load_boostsrl(tmp_path, "imdb_workedunder", "workedunder")
    assert info["splits_read"] == ["Fold1/test", "Fold2/test", "Fold3/test"]
    assert info["n_folds"] == 3 and info["negatives"] == "stored in the files"
    assert [int(np.sum((data.fold == k) & (y == 1))) for k in range(3)] == [2, 2, 2]
    assert [int(np.sum((data.fold == k) & (y == 0))) for k in range(3)] == [3, 3, 3]
    assert data.predicates["movie"] == ("movie", "person")
    assert ("a1",) not in data.facts["director"]  # commented out
    assert len(data.facts["movie"]) == 12
    # a model learned on two folds finds movie(M, A), movie(M, B) on the third
    model = RelationalScratch(max_clauses=5).fit(
        TransferTask(
            Domain(data, y),
            Domain(data, y).subset(np.flatnonzero(data.fold != 0)),
            Domain(data, y).subset(np.flatnonzero(data.fold == 0)),
            "relational",
            2,
        ).without_test()
    )
    test = data.subset(np.flatnonzero(data.fold == 0))
    p = model.predict_proba(test)[:, 1]
    assert relational_metrics(y[data.fold == 0], p)["auc_roc"] == 1.0  # movie(M,A), movie(M,B)


def test_boostsrl_train_test_layouts(tmp_path):
    facts, pos, neg = _world(1)
    facts2, pos2, neg2 = _world(2)
    both = facts + facts2
    # test/ repeats train/: one world, folds made from train/ only
    _write_zip(
        tmp_path / "relational_boostsrl" / "UW-CSE.zip",
        {
            "UW-CSE/uw-cse_bk.txt": BK.replace("workedunder", "advisedby"),
            "UW-CSE/train/train_facts.txt": both,
            "UW-CSE/train/train_pos.txt": (pos + pos2 + pos).replace("workedunder", "advisedby"),
            "UW-CSE/train/train_neg.txt": (neg + neg2).replace("workedunder", "advisedby"),
            "UW-CSE/test/test_facts.txt": both,
            "UW-CSE/test/test_pos.txt": (pos + pos2).replace("workedunder", "advisedby"),
            "UW-CSE/test/test_neg.txt": (neg + neg2).replace("workedunder", "advisedby"),
        },
    )
    data, y, info = load_boostsrl(tmp_path, "uwcse", n_folds=2, seed=3)
    assert info["splits_read"] == ["train"] and info["folds"].startswith("made")
    assert info["duplicate_positives_removed"] == 2 and int(y.sum()) == 4
    assert sorted(np.bincount(data.fold[y == 1])) == [2, 2]
    again, y2, _ = load_boostsrl(tmp_path, "uwcse", n_folds=2, seed=3)
    assert np.array_equal(again.fold, data.fold) and np.array_equal(y, y2)
    # one world, held-out positives (NELL): train and test examples are the two folds;
    # no stored negatives: closed world over the world's constants
    _write_zip(
        tmp_path / "relational_boostsrl" / "NELL.zip",
        {
            "NELL/train/train_bk.txt": BK,
            "NELL/train/train_facts.txt": both,
            "NELL/train/train_pos.txt": pos,
            "NELL/train/train_neg.txt": "",
            "NELL/test/test_facts.txt": both,
            "NELL/test/test_pos.txt": pos2,
        },
    )
    data, y, info = load_boostsrl(tmp_path, "nell_sports", "workedunder")
    assert info["splits_read"] == ["train", "test"] and info["folds"] == "files"
    assert info["negatives"].startswith("closed-world")
    assert int(np.sum(data.fold == 0)) == 64  # 8 people x 8 people (2 true, 62 false)
    task = relational_boostsrl(
        source="uwcse", target="nell_sports", target_predicate="workedunder", data_dir=tmp_path
    )
    assert task.info["target_domain"]["n_folds"] == 2 and len(task.test.X) == 64


def test_boostsrl_bad_input_names_the_predicate(tmp_path):
    facts, pos, neg = _world(1)

    def load(files, target=None):
        path = tmp_path / "relational_boostsrl" / "WebKB.zip"
        _write_zip(path, {f"WebKB/{k}": v for k, v in files.items()})
        return load_boostsrl(tmp_path, "webkb", target or "workedunder")

    base = {
        "webkb_bk.txt": BK,
        "train/train_facts.txt": facts,
        "train/train_pos.txt": pos,
        "train/train_neg.txt": neg,
    }
    load(base)
    with pytest.raises(DataError, match="undeclared predicate 'friend'"):
        load({**base, "train/train_facts.txt": facts + "friend(a1, b1).\n"})
    with pytest.raises(DataError, match=r"undeclared predicate\(s\) 'samebib'"):
        load({**base, "train/train_pos.txt": pos + "samebib(p1, p2).\n"})
    with pytest.raises(DataError, match=r"fact actor\('a1', 'b1'\) has 2 arguments"):
        load({**base, "train/train_facts.txt": "actor(a1, b1).\n"})
    with pytest.raises(DataError, match=r"train_facts\.txt, line 2: cannot read"):
        load({**base, "train/train_facts.txt": "actor(a1).\nactor(a1\n"})
    with pytest.raises(DataError, match="target 'workedunder' has no positive"):
        load({**base, "train/train_pos.txt": "// none\n"})
    with pytest.raises(ConfigError, match="no predicate 'faculty'"):
        load(base, target="faculty")
    with pytest.raises(DataError, match="no mode declarations"):
        load({k: v for k, v in base.items() if k != "webkb_bk.txt"})
    with pytest.raises(ConfigError, match="unknown BoostSRL domain 'yago'"):
        load_boostsrl(tmp_path, "yago")
    (tmp_path / "relational_boostsrl" / "Cora.zip").write_text("not a zip")
    with pytest.raises(DataError, match="as a zip file"):
        load_boostsrl(tmp_path, "cora")


# train / test positives, negatives and facts of SOURCE.md's table (raw lines, commented facts
# counted as the table does; NELL's and imdb_workedunder's test folders are held out)
BOOSTSRL_SOURCE = {
    "imdb": ("train", 96, 147, 1429),
    "uwcse": ("train", 114, 77172, 2561),
    "cora": ("train", 35008, 27709, 6541),
    "webkb": ("train", 154, 594, 1913),
    "nell_sports": ("train", 210, 420, 7824),
}


@pytest.mark.realdata
@pytest.mark.parametrize("domain", list(BOOSTSRL_DOMAINS))
def test_boostsrl_loader_counts_match_source(data_dir, domain):
    data, y, info = load_boostsrl(data_dir, domain)
    assert data.target == BOOSTSRL_DOMAINS[domain][1]
    assert info["negatives"] == "stored in the files"
    assert data.target not in data.facts
    if domain == "imdb_workedunder":
        per_fold = [int(np.sum((data.fold == k) & (y == 1))) for k in range(5)]
        assert per_fold == [56, 58, 178, 45, 45]  # the JSON file's five mega-examples
        assert [int(np.sum((data.fold == k) & (y == 0))) for k in range(5)] == [
            112,
            116,
            356,
            90,
            90,
        ]
        return
    split, n_pos, n_neg, n_facts = BOOSTSRL_SOURCE[domain]
    raw = read_boostsrl(data_dir / "relational_boostsrl" / BOOSTSRL_DOMAINS[domain][0])
    part = raw["splits"][split]
    assert sum(map(len, part["pos"].values())) == n_pos
    assert sum(map(len, part["neg"].values())) == n_neg
    commented = 477 if domain == "imdb" else 0  # IMDB's //director(...), //gender(...) lines
    assert sum(map(len, part["facts"].values())) + commented == n_facts
    target_pos = len(part["pos"][data.target])
    if domain == "nell_sports":
        assert info["splits_read"] == ["train", "test"]
        assert int(y.sum()) == 210 + 90 and np.bincount(data.fold[y == 1]).tolist() == [210, 90]
    else:  # test/ repeats train/: made folds over train/
        assert info["splits_read"] == ["train"] and info["n_folds"] == 3
        assert int(y.sum()) + info["duplicate_positives_removed"] == target_pos
