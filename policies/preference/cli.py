"""`fmb prefs collect | from-episodes | label | train`: preference data, labels and reward models."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    """Add `prefs` and its subcommands to the `fmb` subparsers."""
    from fmb_core.threads import add_threads_flag
    from policies.flags import add_goals_flag, add_sensor_flag
    from sim.parallel import add_executor_flags

    top = sub.add_parser("prefs", help="preference data, labels and reward models for candidate selection")
    cmds = top.add_subparsers(dest="prefs_command", metavar="PREFS_COMMAND", required=True)

    p = cmds.add_parser("collect", help="label candidate chunks by their simulated outcomes")
    p.add_argument("--policy", type=Path, required=True, help="reference policy: run or checkpoint folder")
    p.add_argument("--task", default="", help="task (default: the policy's skill)")
    p.add_argument("--states", type=int, default=40, help="states to collect (default 40)")
    p.add_argument("--candidates", type=int, default=8, help="candidates per state, K (default 8)")
    p.add_argument("--continue-steps", type=int, default=16, help="reference steps after each chunk (default 16)")
    p.add_argument("--decision-stride", type=int, default=2, help="a state every n-th decision (default 2)")
    p.add_argument("--states-per-episode", type=int, default=4, help="at most this many per episode (default 4)")
    p.add_argument("--tie-tolerance", type=float, default=0.01, help="progress difference of a tie (default 0.01)")
    p.add_argument("--temperature", type=float, default=1.0, help="initial-noise scale of the candidates (default 1)")
    p.add_argument("--split", default="all", help="object split (default all)")
    p.add_argument("--side", default="train", help="side of the split (default train)")
    p.add_argument("--backend", default="mujoco", help="mujoco or pybullet (default mujoco)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--seed", type=int, default=200_000, help="first episode seed (default 200000)")
    p.add_argument("--out", type=Path, required=True, help="new preference folder")
    add_goals_flag(p)
    add_sensor_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_flag(p, "rollout")
    add_executor_flags(p)
    p.set_defaults(handler=_cmd_collect)

    p = cmds.add_parser(
        "from-episodes", help="unlabelled states from recorded episodes (a robot's), for fmb prefs label"
    )
    p.add_argument("store", type=Path, help="episode store (fmb_recorder, fmb data import-*, fmb sim collect)")
    p.add_argument("--policy", type=Path, required=True, help="policy proposing the candidates: run or checkpoint")
    p.add_argument("--out", type=Path, required=True, help="new preference folder")
    p.add_argument("--states", type=int, default=40, help="states to take (default 40)")
    p.add_argument("--candidates", type=int, default=4, help="candidates per state, K (default 4)")
    p.add_argument("--stride", type=int, default=10, help="steps between two states of an episode (default 10)")
    p.add_argument("--temperature", type=float, default=1.0, help="initial-noise scale of the candidates (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the candidates' sampling (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_from_episodes)

    p = cmds.add_parser("label", help="rank candidates by hand (terminal or local web page)")
    p.add_argument("dir", type=Path, help="preference folder")
    p.add_argument("--web", type=int, default=0, metavar="PORT", help="serve a page on 127.0.0.1:PORT instead")
    p.add_argument("--relabel", action="store_true", help="also states that already have labels")
    p.set_defaults(handler=_cmd_label)

    p = cmds.add_parser("train", help="train an implicit (DPO) or explicit (Bradley-Terry) reward model")
    p.add_argument("dir", type=Path, help="preference folder")
    p.add_argument("--policy", type=Path, required=True, help="reference policy: run or checkpoint folder")
    p.add_argument("--out", type=Path, required=True, help="reward model folder (written)")
    p.add_argument("--model", default="implicit", help="implicit or explicit (default implicit)")
    p.add_argument("--steps", type=int, default=300, help="gradient steps (default 300)")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per step (default 32)")
    p.add_argument("--lr", type=float, default=0.0, help="learning rate (default: 1e-4 implicit, 3e-4 explicit)")
    p.add_argument("--beta", type=float, default=1000.0, help="DPO temperature (default 1000)")
    p.add_argument("--noise-draws", type=int, default=4, help="noise draws per implicit reward (default 4)")
    p.add_argument("--finetune", default="all", help="implicit: all (a policy copy) or head (faster scoring)")
    p.add_argument("--holdout", type=float, default=0.2, help="share of states held out (default 0.2)")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_flag(p, "training")
    p.set_defaults(handler=_cmd_train)


def _cmd_collect(args) -> int:
    from policies.experiments.evaluate import PolicyRunSpec
    from policies.preference.collect import CollectConfig, collect_preferences

    config = CollectConfig(
        states=args.states,
        candidates=args.candidates,
        continue_steps=args.continue_steps,
        decision_stride=args.decision_stride,
        states_per_episode=args.states_per_episode,
        tie_tolerance=args.tie_tolerance,
        temperature=args.temperature,
        seed=args.seed,
    )
    spec = PolicyRunSpec(
        str(args.policy),
        task=args.task,
        backend=args.backend,
        split=args.split,
        side=args.side,
        device=args.device,
        goals=args.goals,
        sensor=args.sensor,
    )
    from sim.parallel import executor_from_args

    summary = collect_preferences(
        spec, config, args.out, progress=not args.quiet, threads=args.threads, executor=executor_from_args(args)
    )
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_from_episodes(args) -> int:
    from policies.preference.recorded import RecordedStatesConfig, states_from_episodes

    config = RecordedStatesConfig(
        states=args.states,
        candidates=args.candidates,
        stride=args.stride,
        temperature=args.temperature,
        seed=args.seed,
    )
    summary = states_from_episodes(args.store, args.policy, args.out, config, progress=not args.quiet)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_label(args) -> int:
    from policies.preference.data import PreferenceSet
    from policies.preference.label import label_terminal, serve

    pset = PreferenceSet.open(args.dir)
    if args.web:
        server = serve(pset, args.web, args.relabel)
        print(f"labelling page: http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        finally:
            server.server_close()
        return 0
    print(f"labelled {label_terminal(pset, args.relabel)} states; counts {pset.label_counts()}")
    return 0


def _cmd_train(args) -> int:
    import sys

    from fmb_core.threads import configure
    from policies.preference.train import RewardTrainConfig, train_reward
    from policies.runtime.policy import Policy

    config = RewardTrainConfig(
        model=args.model,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        beta=args.beta,
        noise_draws=args.noise_draws,
        finetune=args.finetune,
        holdout=args.holdout,
        seed=args.seed,
    )
    configure("training", threads=args.threads, log=lambda m: print(m, file=sys.stderr))
    policy = Policy.load(args.policy, args.device)
    summary = train_reward(args.dir, policy, args.out, config, not args.quiet, policy_path=str(args.policy))
    print(json.dumps(summary, indent=1))
    return 0
