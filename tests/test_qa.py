"""Causal QA: ground-truth answers, balance, CLEVRER round trip, and the QA head."""

from dataclasses import replace

import numpy as np
import pytest

from ia_world.data.episode import make_env, simulate_episode
from ia_world.errors import DataError
from ia_world.eval.evaluate import metrics_table
from ia_world.eval.features import attribute_vocab, dynamic_indices
from ia_world.eval.qa import (
    Choice,
    Question,
    accuracy_by_type,
    build_vocab,
    correct_share,
    encode_options,
    from_clevrer,
    majority_baseline,
    option_rows,
    paired_qa_cis,
    to_clevrer,
)
from ia_world.eval.qa_generator import (
    clip_events,
    collision_pairs,
    counterfactual_questions,
    first_frames,
    generate_questions,
    influencers,
    named_objects,
    object_refs,
    option_structure,
    shortcut_tokens,
)
from ia_world.eval.qa_head import (
    QAHeadConfig,
    evaluate_qa,
    reference_spans,
    validation_split,
)
from ia_world.report import within_run_markdown

ENV_ID, FRAMES = "ia_world/Billiards-v0", 16


@pytest.fixture(scope="module")
def env():
    return make_env(ENV_ID, size=32)


def test_counterfactual_answers_follow_resimulation(env):
    changed_cases = 0
    for seed in range(40):
        episode = simulate_episode(env, seed, FRAMES)
        refs = object_refs(episode)
        for removed in refs:
            direct = simulate_episode(env, seed, FRAMES, options={"exclude_ids": [removed]})
            without = collision_pairs(direct, 0, FRAMES)
            factual = collision_pairs(episode, 0, FRAMES)
            if without == factual - {p for p in factual if removed in p}:
                continue  # removing the object changes nothing else
            questions = counterfactual_questions(episode, 0, FRAMES, removed, refs, without,
                                                 np.random.default_rng(seed))
            for choice in (c for q in questions for c in q.choices):
                pair = frozenset(k for k in refs if f"the {refs[k][0]} " in choice.text + " ")
                assert len(pair) == 2
                assert choice.correct == (pair in without)
                changed_cases += choice.correct != (pair in factual)
    assert changed_cases > 0, "no option whose answer differs from the factual video"


@pytest.fixture(scope="module")
def split(env):
    """60 Billiards episodes and their questions."""
    episodes = [simulate_episode(env, 500 + i, FRAMES, render=False) for i in range(60)]
    return episodes, generate_questions(env, episodes, FRAMES, horizon=8, seed=1)


def test_counterfactual_options_are_balanced_on_the_video(split):
    episodes, questions = split
    structure = option_structure(episodes, questions, FRAMES)
    right = structure["counterfactual right: collided in the video"]
    wrong = structure["counterfactual wrong: collided in the video"]
    assert 0.05 < right < 0.95  # both kinds of question occur
    assert right == pytest.approx(wrong, abs=1e-9)  # collided-in-the-video answers half
    changed = 0
    for q in (q for q in questions if q.question_type == "counterfactual"):
        episode = episodes[q.clip]
        refs = object_refs(episode)
        removed = named_objects(q.program, refs)[0]
        events = clip_events(episode, FRAMES)
        first = first_frames(events, FRAMES)
        keys = [(pair in first, removed in influencers(events, pair, first[pair]))
                for pair in (frozenset(named_objects(c.program, refs)) for c in q.choices)]
        assert keys[0] == keys[1]  # the two options look alike in the video
        changed += sum(c.correct != (frozenset(named_objects(c.program, refs)) in first)
                       for c in q.choices)
    assert changed > 0


def test_explanatory_answers_are_but_for_among_earlier_linked_objects(env, split):
    episodes, questions = split
    explanatory = [q for q in questions if q.question_type == "explanatory"]
    answers = [next(c.correct for c in q.choices if c.text == "yes") for q in explanatory]
    assert len(explanatory) >= 10 and np.mean(answers) == pytest.approx(0.5)
    for q, yes in zip(explanatory, answers):
        episode = episodes[q.clip]
        a, b, cause = named_objects(q.program, object_refs(episode))
        events = clip_events(episode, FRAMES)
        pair = frozenset((a, b))
        # the candidate is linked to the target by collisions BEFORE it, right or wrong
        assert cause in influencers(events, pair, first_frames(events, FRAMES)[pair]) - pair
        without = simulate_episode(env, episode.meta["seed"], FRAMES,
                                   options={"exclude_ids": [cause]}, render=False)
        assert yes == (pair not in collision_pairs(without, 0, FRAMES))


def test_shortcut_tokens_hold_the_events_only(split):
    episodes, _ = split
    vocab = attribute_vocab(episodes)
    most = max(len(dynamic_indices(ep)) for ep in episodes)
    tokens = shortcut_tokens(episodes, FRAMES, most, vocab)
    base = len(vocab["color"]) + len(vocab["material"])
    met = tokens[:, :, base + most:base + 2 * most]              # E M M: collided with slot j
    assert tokens.shape[:2] == (len(episodes), most) and (met == met.transpose(0, 2, 1)).all()
    for e, episode in enumerate(episodes):
        ids = [episode.objects[i]["id"] for i in dynamic_indices(episode)]
        pairs = {frozenset((ids[i], ids[j])) for i in range(len(ids)) for j in range(len(ids))
                 if met[e, i, j]}
        assert pairs == collision_pairs(episode, 0, FRAMES)
    moved = [with_other_motion(ep) for ep in episodes[:3]]
    assert np.array_equal(shortcut_tokens(moved, FRAMES, most, vocab), tokens[:3])
    with pytest.raises(DataError, match="max_objects"):
        shortcut_tokens(episodes, FRAMES, most - 1, vocab)


def with_other_motion(episode):
    """The episode with every position, velocity, mass and size changed, its events kept."""
    return replace(episode, frames=episode.frames * 0,
                   states={k: v * 2.0 + 1.0 for k, v in episode.states.items()},
                   objects=[dict(o, mass=o["mass"] * 3, size=o["size"] * 2)
                            for o in episode.objects])


def test_generated_questions_are_balanced_and_typed(env):
    episodes = [simulate_episode(env, 100 + i, FRAMES) for i in range(30)]
    questions = generate_questions(env, episodes, FRAMES, horizon=16, seed=0)
    types = {q.question_type for q in questions}
    assert types == {"descriptive", "explanatory", "predictive", "counterfactual"}
    assert all(sum(c.correct for c in q.choices) == 1 for q in questions)
    for share in correct_share(questions).values():
        assert share == pytest.approx(0.5)
    yes = [c.correct for q in questions for c in q.choices if c.text == "yes"]
    assert np.mean(yes) == pytest.approx(0.5)
    majority = majority_baseline(questions, questions)
    assert all(m["per_option"] == pytest.approx(0.5) for m in majority.values())
    assert generate_questions(env, episodes[:5], FRAMES, 16, 0) == \
        generate_questions(env, episodes[:5], FRAMES, 16, 0)


def test_clevrer_round_trip():
    question = Question(3, "counterfactual", "What if?", ["objects", "filter_counterfact"],
                        [Choice("a", ["x"], True), Choice("b", ["y"], False)])
    assert from_clevrer(to_clevrer(question, 7), clip=3) == question


def toy_questions(clips, objects):
    """'Is object j lit?' for every clip and object; the answer is bit (c, j)."""
    bits = np.random.default_rng(0).integers(0, 2, size=(clips, objects)).astype(bool)
    questions = [Question(c, "descriptive", f"lit {j}?", ["objects", f"o{j}", "lit"],
                          [Choice("yes", ["yes"], bool(bits[c, j])),
                           Choice("no", ["no"], not bits[c, j])])
                 for c in range(clips) for j in range(objects)]
    return questions, bits


def test_qa_head_beats_majority_only_when_features_hold_the_answer():
    clips, objects, dim = 160, 4, 8
    questions, bits = toy_questions(clips, objects)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(clips, objects, dim)).astype(np.float32)
    informative = noise.copy()
    informative[:, :, 0] = np.where(bits, 2.0, -2.0)       # token j carries object j's bit
    informative[:, :, 1 + np.arange(objects) % (dim - 1)] += 3 * np.eye(objects)  # token id
    train = [q for q in questions if q.clip < 120]
    test = [q for q in questions if q.clip >= 120]
    cfg = QAHeadConfig(width=32, epochs=25, seed=0)
    result = evaluate_qa(train, test, {"seeing": informative, "blind": noise},
                         {"seeing": informative, "blind": noise}, cfg)
    majority = result["majority"]["descriptive"]["per_option"]
    assert result["subjects"]["seeing"]["descriptive"]["per_option"] > majority + 0.25
    assert result["subjects"]["blind"]["descriptive"]["per_option"] < majority + 0.12
    in_process = evaluate_qa(train, test, {"blind": noise, "seeing": informative},
                             {"blind": noise, "seeing": informative},
                             QAHeadConfig(width=32, epochs=25, seed=0, workers=1))
    assert in_process["subjects"] == result["subjects"]  # one thread per head: same numbers


def test_early_stopping_holds_out_training_clips_and_stops_on_noise():
    questions, _ = toy_questions(80, 4)
    fitted, held = validation_split(questions, 0.2, seed=3)
    assert len({q.clip for q in held}) == 16 and not {q.clip for q in fitted} & \
        {q.clip for q in held} and len(fitted) + len(held) == len(questions)
    assert validation_split(questions, 0.2, seed=3) == (fitted, held)
    assert validation_split(questions, 0.0, seed=3) == (questions, [])
    noise = np.random.default_rng(2).normal(size=(80, 4, 8)).astype(np.float32)
    train, test = [q for q in questions if q.clip < 60], [q for q in questions if q.clip >= 60]
    cfg = QAHeadConfig(width=16, hidden=32, epochs=40, val_fraction=0.2, workers=1)
    result = evaluate_qa(train, test, {"blind": noise}, {"blind": noise}, cfg)
    assert result["epochs"]["blind"] < 40  # validation loss stops improving on noise
    full = evaluate_qa(train, test, {"blind": noise}, {"blind": noise},
                       QAHeadConfig(width=16, hidden=32, epochs=3, val_fraction=0.0, workers=1))
    assert full["epochs"]["blind"] == 3


def test_clevrer_loader_records_feed_the_same_questions():
    record = {"question_id": 1, "question_type": "predictive", "question": "What next?",
              "program": ["events", "get_future"],
              "choices": [{"choice_id": 0, "choice": "a", "program": ["x"], "answer": True},
                          {"choice_id": 1, "choice": "b", "program": ["y"], "answer": False}]}
    assert [c.correct for c in from_clevrer(record, clip=0).choices] == [True, False]
    open_ended = {"question_id": 2, "question_type": "descriptive", "question": "What color?",
                  "program": ["query_color"], "answer": "red", "choices": []}
    with pytest.raises(DataError, match="not a multiple-choice"):
        from_clevrer(open_ended, clip=0)


def test_reference_spans_mark_each_object_reference():
    question = Question(0, "explanatory", "Why?",
                        ["events", "objects", "red", "filter_color", "unique", "objects", "blue",
                         "filter_color", "unique", "filter_collision", "unique"],
                        [Choice("a", ["objects", "o1", "lit"], True),
                         Choice("b", ["yes"], False)])
    vocab = build_vocab([question])
    ids, _, _, _ = encode_options([question], vocab)
    spans = reference_spans(ids, vocab)
    length = (ids[0] > 0).sum()
    # question: events [1 1 1 1] [2 2 2 2] filter_collision unique <sep> option: [3 3 3]
    assert spans[0, :length].tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 3, 3, 3]
    assert spans[1, :(ids[1] > 0).sum()].tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0]
    assert (spans[ids == 0] == 0).all()


def answered_by(questions, rights: dict[str, float], seed: int = 0) -> dict[str, np.ndarray]:
    """subject -> (R,) predictions right on each option with probability rights[subject]."""
    truth = np.array([c.correct for _, _, c in option_rows(questions)])
    rng = np.random.default_rng(seed)
    return {s: np.where(rng.random(len(truth)) < share, truth, ~truth)
            for s, share in rights.items()}


def typed_questions(clips: int) -> list[Question]:
    """Two descriptive and one predictive question of two options per clip."""
    return [Question(c, qtype, "q", ["q"], [Choice("a", ["a"], bool((c + k) % 2)),
                                             Choice("b", ["b"], not (c + k) % 2)])
            for c in range(clips)
            for k, qtype in enumerate(("descriptive", "descriptive", "predictive"))]


def test_paired_qa_cis_self_zero_shift_excludes_zero_and_deterministic():
    questions = typed_questions(80)
    answers = answered_by(questions, {"encoder": 0.85, "floor": 0.5, "ceiling": 1.0})
    answers["static"] = answers["encoder"].copy()  # the encoder against itself
    paired = paired_qa_cis(questions, answers, seed=3)
    for qtype in ("descriptive", "predictive"):
        for unit in ("per_option", "per_question"):
            assert paired[qtype][unit]["encoder - static"] == [0.0, 0.0]
        low, high = paired[qtype]["per_option"]["encoder - floor"]
        assert 0.1 < low < high < 0.6  # a known shift of +0.35 per option
        gap = paired[qtype]["per_option"]["gap_closed"]  # (0.85 - 0.5) / (1 - 0.5) = 0.7
        assert 0.3 < gap[0] < 0.7 < gap[1] < 1.0
        assert paired[qtype]["per_option"]["encoder - ceiling"][1] < 0
    assert paired_qa_cis(questions, answers, seed=3) == paired  # same seed, same CIs
    assert paired_qa_cis(questions, answers, seed=4) != paired
    # no effect: an unrelated coin flip against the floor straddles 0
    coin = {"encoder": answered_by(questions, {"x": 0.5}, seed=9)["x"],
            "floor": answers["floor"]}
    low, high = paired_qa_cis(questions, coin)["descriptive"]["per_option"]["encoder - floor"]
    assert low < 0 < high


def test_paired_qa_cis_resample_whole_clips_and_reach_the_report():
    questions = typed_questions(60)
    answers = answered_by(questions, {"encoder": 0.8, "floor": 0.5, "static": 0.5,
                                      "pixel": 0.5, "ceiling": 1.0, "shortcut": 0.5})
    # the encoder is right on every option of clips 0-29 and wrong on every option of 30-59:
    # its difference to an all-right ceiling is 0 or -1 per clip, so resampling whole clips
    # gives a wide interval, resampling options one by one would give a narrow one
    by_clip = np.array([q.clip for q in questions for _ in q.choices])
    truth = np.array([c.correct for _, _, c in option_rows(questions)])
    answers["encoder"] = np.where(by_clip < 30, truth, ~truth)
    paired = paired_qa_cis(questions, answers)
    low, high = paired["descriptive"]["per_option"]["encoder - ceiling"]
    assert high - low > 0.2 and low < -0.5 < high
    qa = {"subjects": {s: accuracy_by_type(questions, p, with_ci=True)
                       for s, p in answers.items()}, "paired_ci": paired}
    table = metrics_table({}, {}, qa)
    row = table["QA predictive per-option"]
    assert row["paired_ci"] == paired["predictive"]["per_option"]
    assert set(row["paired_ci"]) == {f"encoder - {s}" for s in answers if s != "encoder"} | {
        "gap_closed"}
    markdown = within_run_markdown({"interaction": [{"metrics": table}]})
    assert "| QA predictive per-option | 0 / 0 of 1 |" in markdown
