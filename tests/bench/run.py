# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`: time latitudesh.cloud against the API sandbox and write docs/performance.md.

Run with a virtualenv's Python (Ansible's commands come from beside ``sys.executable``). The paired
ratios and their targets are TARGETS, with an import profile of the api_key_info and ping payloads.
Request counts per operation: tests/functional/test_request_counts.py.
"""

import argparse
import base64
import collections
import io
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_DIR = os.path.join(ROOT, "tests", "bench")
DOC_PATH = os.path.join(ROOT, "docs", "performance.md")
sys.path[:0] = [os.path.join(ROOT, "tests", "sandbox"), os.path.join(ROOT, "tests", "ci")]
import collection  # noqa: E402  pylint: disable=wrong-import-position
import latitude_sandbox  # noqa: E402  pylint: disable=wrong-import-position

LATENCY_MS, MIN_ROUNDS, PROFILE_REPEATS, STARTUP_REPEATS = 20, 5, 5, 3
LOOP_KEYS, WARMUP_ITEMS = 20, 5  # the warm-up round runs the loops over fewer items
SCALE_TEAMS, SCALE_KEYS = 10, 50
RATE_KEYS, WRITES_PER_WINDOW = 50, latitude_sandbox.RATE_LIMITS["write"]
WINDOW_FACTOR, MIN_WINDOW = 1.3, 10
PARTS = ("loop", "role", "ratelimit", "startup")
WARMUP_SKIP = ("role_10x50", "role_10x1", "rate_free", "rate_limited")  # long; shorter ones run the same playbooks
MODULE_UTILS = "ansible_collections.latitudesh.cloud.plugins.module_utils."
# (key, measure, numerator, denominator, target); the rate-limited run is divided by its floor. No target: a
# reference (the floor of any module built on requests, tests/bench/playbooks/library, and the collection's share above it).
TARGETS = (
    ("loop_vs_uri", "api_key loop vs per-key uri loop (20 keys, re-run)", "loop_module", "loop_uri", 1.0),
    ("loop_vs_ping", "api_key loop vs ping loop (20 items)", "loop_module", "loop_ping", 1.35),
    ("requests_floor", "bare requests GET module loop vs ping loop", "loop_requests", "loop_ping", None),
    ("above_floor", "api_key loop vs bare requests GET module loop", "loop_module", "loop_requests", None),
    ("role_vs_uri", "role re-run vs careful uri playbook (1 team, 20 keys)", "role_20", "uri_careful", 1.0),
    ("scale", "role re-run 10 teams x 50 keys vs 10 x 1", "role_10x50", "role_10x1", 2.0),
    ("ratelimit", "50 creates under the rate limit vs the floor it sets", "rate_limited", "floor", 1.10),
    ("startup", "one api_key_info task vs one ping task", "start_info", "start_ping", 1.4),
)


class BenchError(Exception):
    """A scenario failed or sent other requests than expected; the message says where to look."""


def log(message):
    print("bench: " + message, flush=True)


def median(values):
    return statistics.median(values) if values else None


def paired(first, second):
    """The median of the per-round ratios first[i] / second[i]."""
    return median([a / b for a, b in zip(first, second) if a is not None and b])


class Ansible(object):
    """Runs the bench playbooks on localhost with the collection, the timing callback and a clean config."""

    def __init__(self, work, collections_path, api_url):
        self.work, self.collections_path, self.api_url, self.runs = work, collections_path, api_url, 0
        for folder in ("vars", "logs", "tokens", "ansible-tmp"):
            os.makedirs(os.path.join(work, folder), exist_ok=True)
        self.inventory, self.config = os.path.join(work, "inventory.ini"), os.path.join(work, "ansible.cfg")
        for path, text in ((self.inventory, "localhost ansible_connection=local ansible_python_interpreter=%s\n"
                            % sys.executable), (self.config, "[defaults]\n")):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)

    def playbook(self, playbook, extravars, label, extra_env=None):
        """Run one playbook; return its timing record (``exec`` = first task start to end)."""
        self.runs += 1
        slug = "%03d-%s" % (self.runs, label)
        vars_path = os.path.join(self.work, "vars", slug + ".json")
        with os.fdopen(os.open(vars_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            json.dump(extravars, handle)
        timer = os.path.join(self.work, "logs", slug + ".timer.json")
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LATITUDESH_")))
        env.update(ANSIBLE_CONFIG=self.config, ANSIBLE_COLLECTIONS_PATH=self.collections_path,
                   ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(BENCH_DIR, "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="bench_timer", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.work, "ansible-tmp"), LATITUDESH_API_URL=self.api_url,
                   BENCH_TIMER_FILE=timer, **(extra_env or {}))
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", self.inventory,
                "-e", "@" + vars_path, os.path.join(BENCH_DIR, "playbooks", playbook)]
        log_path = os.path.join(self.work, "logs", slug + ".log")
        with open(log_path, "w", encoding="utf-8") as output:
            before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
            done = subprocess.run(argv, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=self.work, check=False)
            wall, after = time.time() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise BenchError("%s failed (exit %d); see %s" % (label, done.returncode, log_path))
        with open(timer, encoding="utf-8") as handle:
            record = json.load(handle)
        if not record["tasks"]:
            raise BenchError("%s ran no task; see %s" % (label, log_path))
        first = record["tasks"][0][1]
        return {"exec": record["end"] - first, "wall": wall, "first_task": first, "end": record["end"],
                "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def expect_requests(entries, expected, label, allow_429=False):
    """Check that ``entries`` are exactly the ``expected`` successful requests; return the count of 429s."""
    counts = dict(collections.Counter(e["method"] for e in entries if e["status"] is not None and e["status"] < 400))
    limited = sum(1 for entry in entries if entry["status"] == 429)
    failed = [e for e in entries if e["status"] is None or (e["status"] >= 400 and e["status"] != 429)]
    if failed or counts != expected or (limited and not allow_429):
        raise BenchError("%s sent %r (%d rate-limited, %d failed); expected %r" % (label, counts, limited, len(failed), expected))
    return limited


def plain_key(name, index=None):
    """A key declaration; with ``index``, its settings vary with it (read-only, allowed IPs)."""
    varied = index is not None
    return {"name": name, "read_only": varied and index % 4 == 0, "allowed_ips": ["10.%d.0.0/16" % index] if varied and index % 2 else []}


class Bench(object):
    """Teams set up once through the control API, then one ``run_round`` per round."""

    def __init__(self, sandbox, ansible, parts):
        self.sandbox, self.control, self.ansible, self.parts = sandbox, sandbox.control, ansible, parts
        self.samples = collections.defaultdict(list)  # scenario -> [timing per measured round]
        self.keys20 = [plain_key("bench-key-%02d" % index, index) for index in range(LOOP_KEYS)]
        self.token20 = self.add_team("loop-20", self.keys20)
        self.scale = {}
        if "role" in parts:
            for size in (1, SCALE_KEYS):
                keys = [plain_key("key-%02d" % number) for number in range(size)]
                self.scale[size] = [{"name": "scale%d-%02d" % (size, i), "api_keys": keys,
                                     "auth_token": self.add_team("scale%d-%02d" % (size, i), keys)}
                                    for i in range(SCALE_TEAMS)]
        self.window = None

    def add_team(self, name, keys=()):
        return self.control.add_team(name, list(keys))["admin_token"]

    def take_log(self):
        """The API requests logged since the last call (and forget them)."""
        entries = self.control.log()
        self.control.clear_log()
        return entries

    def timed(self, name, playbook, extravars, expected, allow_429=False):
        self.take_log()
        timing = self.ansible.playbook(playbook, extravars, name)
        timing["requests"] = self.take_log()
        timing["limited"] = expect_requests(timing["requests"], expected, name, allow_429)
        return timing

    def repeated(self, name, playbook, extravars, expected):  # a one-task scenario is short, so noisy
        runs = [self.timed(name, playbook, extravars, expected) for dummy in range(STARTUP_REPEATS)]
        return dict(runs[0], **{field: median([run[field] for run in runs]) for field in ("exec", "wall", "cpu")})

    def role(self, name, teams):
        token_dir = os.path.join(self.ansible.work, "tokens", name)
        shutil.rmtree(token_dir, ignore_errors=True)
        return self.timed(name, "role.yml", {"bench_teams": teams, "bench_token_dir": token_dir}, {"GET": len(teams)})

    def run_round(self, number, warmup):
        """Every scenario once, in a fixed order (the warm-up round: shorter loops, no long scenarios)."""
        items = WARMUP_ITEMS if warmup else LOOP_KEYS
        loop = {"bench_token": self.token20, "bench_keys": self.keys20[:items], "bench_api_url": self.sandbox.url}
        role20 = [{"name": "loop-20", "auth_token": self.token20, "api_keys": self.keys20}]
        scenarios = (
            ("loop", "loop_module", lambda: self.timed("loop_module", "module_loop.yml", loop, {"GET": items})),
            ("loop", "loop_uri", lambda: self.timed("loop_uri", "uri_loop.yml", loop, {"GET": items})),
            ("loop", "loop_ping", lambda: self.timed("loop_ping", "ping_loop.yml", loop, {})),
            ("loop", "loop_requests", lambda: self.timed("loop_requests", "requests_floor_loop.yml", loop, {"GET": items})),
            ("role", "role_20", lambda: self.role("role_20", role20)),
            ("role", "uri_careful", lambda: self.timed("uri_careful", "uri_careful.yml", dict(loop, bench_keys=self.keys20), {"GET": 1})),
            ("role", "role_10x50", lambda: self.role("role_10x50", self.scale[SCALE_KEYS])),
            ("role", "role_10x1", lambda: self.role("role_10x1", self.scale[1])),
            ("ratelimit", "rate_free", lambda: self.rate_free(number)),
            ("ratelimit", "rate_limited", lambda: self.rate_limited(number)),
            ("startup", "start_info", lambda: self.repeated("start_info", "info_once.yml", loop, {"GET": 1})),
            ("startup", "start_ping", lambda: self.repeated("start_ping", "ping_once.yml", {}, {})),
        )
        results = collections.OrderedDict(
            (name, run()) for part, name, run in scenarios if part in self.parts and not (warmup and name in WARMUP_SKIP))
        for name, timing in results.items() if not warmup else ():
            self.samples[name].append(dict(timing, requests=None))
        return results

    def create_keys(self, name, team, count):
        keys = [plain_key("bulk-%02d" % index) for index in range(count)]
        extravars = {"bench_token": self.add_team(team), "bench_keys": keys}
        return self.timed(name, "module_loop.yml", extravars, {"GET": count, "POST": count}, allow_429=name == "rate_limited")

    def rate_free(self, number):
        """The last window's share of the writes with the limit off: its lead, tail and time per key."""
        windows = int(math.ceil(RATE_KEYS / float(WRITES_PER_WINDOW)))
        timing = self.create_keys("rate_free", "rate-free-r%d" % number, RATE_KEYS - WRITES_PER_WINDOW * (windows - 1))
        posts = [entry["ts"] for entry in timing["requests"] if entry["method"] == "POST"]
        timing.update(lead=timing["requests"][0]["ts"] - timing["first_task"], tail=timing["end"] - posts[0],
                      per_key=(posts[-1] - posts[0]) / max(1, len(posts) - 1), full_windows=windows - 1)
        # A window that the writes cannot fill in time, in whole seconds (retry_after is whole seconds from 10 s).
        self.window = max(MIN_WINDOW, int(math.ceil(WINDOW_FACTOR * WRITES_PER_WINDOW * timing["per_key"])))
        return timing

    def rate_limited(self, number):
        self.control.rate_limit(True, window=self.window)
        try:
            timing = self.create_keys("rate_limited", "rate-lim-r%d" % number, RATE_KEYS)
        finally:
            self.control.rate_limit(False)
        timing["window"] = self.window
        return timing


def payload_files(path):
    """The Python files inside a kept AnsiballZ wrapper: {archive name: source text}."""
    with open(path, encoding="utf-8") as handle:
        found = re.search(r"zip_data\s*=\s*b?'([A-Za-z0-9+/=]+)'", handle.read())
    if not found:
        raise BenchError("no zip_data in %s" % path)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(found.group(1)))) as archive:
        return dict((name, archive.read(name).decode("utf-8", "replace")) for name in archive.namelist() if name.endswith(".py"))


def import_times(stderr):
    """From ``python -X importtime``: cumulative ms of basic and http.client, self ms of the collection's module_utils."""
    found = {}
    for line in stderr.decode("utf-8", "replace").splitlines():
        match = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)", line)
        if not match:
            continue
        own, cumulative, name = int(match.group(1)) / 1000.0, int(match.group(2)) / 1000.0, match.group(3)
        if name in ("ansible.module_utils.basic", "http.client"):
            found.setdefault(name, cumulative)
        elif name.startswith(MODULE_UTILS):
            found["module_utils"] = found.get("module_utils", 0.0) + own
    return found


def startup_profile(bench):
    """Size of the api_key_info and ping payloads, their run time and their main imports (medians)."""
    keep = os.path.join(bench.ansible.work, "keep")
    shutil.rmtree(keep, ignore_errors=True)
    token = bench.add_team("startup-profile", [plain_key("ci-deployer"), plain_key("second")])
    bench.ansible.playbook("startup_payloads.yml", {"bench_token": token, "bench_api_url": bench.sandbox.url},
                           "startup_payloads", {"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TEMP": keep})
    kept = dict((name[len("AnsiballZ_"):-3], os.path.join(folder, name)) for folder, dummy, names in os.walk(keep)
                for name in names if name in ("AnsiballZ_api_key_info.py", "AnsiballZ_ping.py"))
    if set(kept) != {"api_key_info", "ping"}:
        raise BenchError("kept payloads not found under %s" % keep)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTHON")))
    runs = collections.defaultdict(lambda: collections.defaultdict(list))
    bench.take_log()
    for dummy, (name, path), importtime in itertools.product(range(PROFILE_REPEATS), sorted(kept.items()), (False, True)):
        started = time.perf_counter()  # interleaved: api_key_info, ping, api_key_info, ...
        done = subprocess.run([sys.executable] + ["-X", "importtime"] * importtime + [path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, check=False)
        if done.returncode != 0:
            raise BenchError("%s failed: %s" % (path, done.stderr.decode("utf-8", "replace")[-500:]))
        for part, ms in import_times(done.stderr).items() if importtime else [("run", (time.perf_counter() - started) * 1000.0)]:
            runs[name][part].append(ms)
    expect_requests(bench.take_log(), {"GET": 2 * PROFILE_REPEATS}, "the kept api_key_info payload")
    files = dict((name, payload_files(path)) for name, path in kept.items())
    return dict((name, dict(bytes=os.path.getsize(kept[name]), files=len(files[name]),
                            lines=sum(text.count("\n") for text in files[name].values()),
                            **dict((part, median(values)) for part, values in runs[name].items()))) for name in kept)


def fmt(value, unit=" s", digits=2):
    return "n/a" if value is None else "%.*f%s" % (digits, value, unit)


def render(samples, profile, meta):
    """docs/performance.md from the samples of the measured rounds and the start-up profile."""
    def values(name, field="exec"):
        return [timing[field] for timing in samples.get(name, [])]
    floors = [free["lead"] + free["full_windows"] * limited["window"] + free["tail"]
              for free, limited in zip(samples.get("rate_free", []), samples.get("rate_limited", []))]
    out = ["# Performance", "", "Generated by `make bench` (`tests/bench/run.py`) on %s; do not edit by hand." % meta["date"], "",
           "- Machine: %(cpus)s CPU(s), %(model)s, %(system)s; Python %(python)s, ansible-core %(ansible)s; requests %(requests)s (reference only)."
           % meta["machine"] + " Load average %(load_start)s at the start, %(load_end)s at the end." % meta
           + (" **The machine was busy with other work: compare the CPU-time ratios.**"
              if max(float(meta["load_start"]), float(meta["load_end"])) > meta["machine"]["cpus"] else ""),
           "- API: the sandbox (`tests/sandbox/latitude_sandbox.py`) in its own process, %d ms per API request; modules "
           "run with the same Python over the local connection." % LATENCY_MS,
           "- %d measured round(s)%s, every scenario once per round in a fixed order (a one-task scenario %d times, its "
           "median); a time is the median over the rounds, a ratio the median of the ratios of the same round."
           % (meta["rounds"], " after a warm-up round" * meta["warmup"], STARTUP_REPEATS),
           "- Time: from the start of the playbook's first task to its end (callback `bench_timer`). Every timed run must send "
           "exactly the expected requests; the requests per operation are tested by `tests/functional/test_request_counts.py`.",
           "- The run took %s." % fmt(meta["elapsed"]), "",
           "## Targets", "", "| measure | target | result | verdict | CPU-time ratio |", "|---|---|---|---|---|"]
    for key, label, first, second, target in TARGETS:
        value = paired(values(first), floors if key == "ratelimit" else values(second))
        cpu = None if key == "ratelimit" else paired(values(first, "cpu"), values(second, "cpu"))
        verdict = ("not measured" if value is None else "reference" if target is None else "met" if value <= target
                   else "missed by %.0f%%" % ((value / target - 1) * 100))
        out.append("| %s | %s | %s | %s | %s |" % (label, "none" if target is None else "<= %.2fx" % target,
                                                   fmt(value, "x"), verdict, fmt(cpu, "x")))
    out += ["", "## Scenarios", "", "| scenario | time (min-max) | wall, whole command | CPU time |", "|---|---|---|---|"]
    out += ["| %s | %s (%.2f-%.2f) | %s | %s |" % (
        name, fmt(median(values(name))), min(values(name)), max(values(name)), fmt(median(values(name, "wall"))),
        fmt(median(values(name, "cpu")))) for name in samples]
    if samples.get("rate_limited"):
        out += ["", "Rate limit: %d creates, %d writes per window of %s s, %g answers 429 per run (median)." % (
            RATE_KEYS, WRITES_PER_WINDOW, samples["rate_limited"][-1]["window"], median(values("rate_limited", "limited")))]
    if profile:
        out += ["", "## Start-up profile", "", "The kept AnsiballZ payloads run on their own, median of %d runs; imports from "
                "`python -X importtime`: cumulative for `basic` and `http.client`, self time summed over the collection's "
                "module_utils." % PROFILE_REPEATS, "",
                "| payload | bytes | files | lines | run | import basic | import http.client | collection module_utils |",
                "|---|---|---|---|---|---|---|---|"]
        out += ["| %s | %d | %d | %d | %s | %s | %s | %s |" % (
            name, row["bytes"], row["files"], row["lines"], fmt(row.get("run"), " ms", 0),
            fmt(row.get("ansible.module_utils.basic"), " ms", 0), fmt(row.get("http.client"), " ms", 0),
            fmt(row.get("module_utils"), " ms", 0)) for name, row in sorted(profile.items())]
    return "\n".join(out) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Benchmark latitudesh.cloud against the API sandbox.")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS, help="measured rounds (default %d)" % MIN_ROUNDS)
    parser.add_argument("--quick", action="store_true", help="no warm-up round; the report goes to --work")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: %s" % ",".join(PARTS))
    parser.add_argument("--collections", help="use this collections path instead of building the collection")
    parser.add_argument("--work", default=os.path.join(ROOT, ".tmp", "bench"), help="work directory (default .tmp/bench)")
    parser.add_argument("--output", help="report path (default: docs/performance.md for a full run, else in --work)")
    args = parser.parse_args(argv)
    args.parts = [part.strip() for part in args.only.split(",") if part.strip()]
    if [part for part in args.parts if part not in PARTS] or not args.parts:
        parser.error("--only takes parts among: %s" % ", ".join(PARTS))
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    full = not args.quick and args.rounds >= MIN_ROUNDS and set(args.parts) == set(PARTS)
    args.output = args.output or (DOC_PATH if full else os.path.join(args.work, "performance.md"))
    return args


def main(argv=None):
    args = parse_args(argv)
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")):
        log("no ansible-playbook beside %s; run with the virtualenv's Python (make bench)" % sys.executable)
        return 2
    started, work = time.time(), os.path.abspath(args.work)
    import ansible.release  # pylint: disable=import-outside-toplevel
    import requests  # pylint: disable=import-outside-toplevel
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "unknown")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rounds": args.rounds, "warmup": not args.quick,
            "load_start": "%.2f" % os.getloadavg()[0], "machine": {
                "cpus": os.cpu_count(), "model": model, "system": "%s %s" % (platform.system(), platform.release()),
                "python": platform.python_version(), "ansible": ansible.release.__version__, "requests": requests.__version__}}
    os.makedirs(work, exist_ok=True)
    if args.collections:
        collections_path = os.path.abspath(args.collections)
    else:
        log("building and installing the collection under %s" % work)
        collections_path = collection.build_and_install(work)
    with latitude_sandbox.SandboxProcess(["--latency-ms", str(LATENCY_MS)], work_dir=work,
                                         output=os.path.join(work, "sandbox.out")) as sandbox:
        log("sandbox at %s, %d ms per API request" % (sandbox.url, LATENCY_MS))
        bench = Bench(sandbox, Ansible(work, collections_path, sandbox.url), args.parts)
        rounds = ([(0, True)] if not args.quick else []) + [(number, False) for number in range(1, args.rounds + 1)]
        for number, warmup in rounds:
            round_started, results = time.time(), bench.run_round(number, warmup)
            log("%s in %.0f s: %s" % ("warm-up round" if warmup else "round %d" % number, time.time() - round_started,
                                      ", ".join("%s %.2f" % (name, timing["exec"]) for name, timing in results.items())))
        profile = startup_profile(bench) if "startup" in args.parts else None
    meta.update(elapsed=time.time() - started, load_end="%.2f" % os.getloadavg()[0])
    with open(os.path.join(work, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"samples": bench.samples, "profile": profile, "meta": meta}, handle)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(render(bench.samples, profile, meta))
    log("report written to %s (%.0f s in all)" % (args.output, meta["elapsed"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, collection.BuildError, RuntimeError) as error:
        print("bench: %s" % error, file=sys.stderr)
        sys.exit(1)
