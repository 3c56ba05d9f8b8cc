# -*- coding: utf-8 -*-
# Copyright (c) latitudesh.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Token custody: a new token is written by the task that receives it, or the change is undone.

Each case runs ansible-playbook against its own sandbox and token directory. Where a case needs a
disk that fills up, it mounts a small tmpfs (the tests run as root in CI); where it needs a run to
be caught in the middle, the sandbox delays the request and the test acts on the file system while
the request is in flight.
"""

import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time

import pytest
import yaml

from harness import API, ITEM, Job, api_request, assert_no_traceback, build_play, job_result, run_jobs

pytestmark = pytest.mark.fault

KEY = "latitudesh.cloud.api_key"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def writes(log):
    return [entry for entry in log if entry["method"] in WRITES]


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def authenticates(sandbox, token):
    status, _body = api_request(sandbox, "GET", API, token)
    return status == 200


@contextlib.contextmanager
def small_filesystem(path, size="64k"):
    """A tmpfs of ``size`` at ``path``: a disk that root cannot write past."""
    os.makedirs(path)
    if os.geteuid() != 0:
        pytest.fail("this case mounts a small tmpfs and needs root (CI runs as root)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    assert proc.returncode == 0, "mount -t tmpfs failed: %s" % proc.stdout.decode("utf-8", "replace")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


def fill(directory):
    """Fill the file system of ``directory`` until it is full (ENOSPC)."""
    with open(os.path.join(directory, "filler"), "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass
        with contextlib.suppress(OSError):
            handle.close()


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


def role_play(token_dir, teams, purge=False, vault=None, reissue=False, api_timeout=10):
    role_vars = {
        "team_api_keys_token_dir": token_dir,
        "team_api_keys_purge": purge,
        "team_api_keys_reissue_missing_tokens": reissue,
        "team_api_keys_teams": [
            {"name": team, "auth_token": "{{ lookup('env', 'LATITUDESH_AUTH_TOKEN') }}", "api_keys": keys}
            for team, keys in teams
        ],
    }
    if vault:
        role_vars["team_api_keys_vault_password"] = "{{ lookup('env', 'VAULT_PASSWORD') }}"
    play = build_play([], api_url="{{ lookup('env', 'LATITUDESH_API_URL') }}", api_timeout=api_timeout)[0]
    play.pop("tasks")
    play["roles"] = [{"role": "latitudesh.cloud.team_api_keys", "vars": role_vars}]
    return yaml.safe_dump([play], sort_keys=False, width=1000)


@pytest.fixture
def token_dir(tmp_path, artifacts):
    path = str(tmp_path / "credentials")
    artifacts.add_token_dir(path)
    return path


def key_task(name, token_path, **args):
    args.update(name=name, token_path=token_path)
    return {"name": "case", KEY: args, "ignore_errors": True}


# --------------------------------------------------------------------------- before any request


def test_unwritable_destinations_are_refused_before_any_request(sandbox, control, run_play, tmp_path):
    """A file where the directory should be, and a full disk: the task fails naming the path; 0 requests."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file, not a directory\n")
    with small_filesystem(str(tmp_path / "full")) as full:
        fill(full)
        run = run_play([
            dict(key_task("c1", str(blocker / "c1.token")), name="file in the way"),
            dict(key_task("c2", os.path.join(full, "team", "c2.token")), name="disk full, new directory"),
            dict(key_task("c3", os.path.join(full, "c3.token")), name="disk full"),
        ])
    assert_no_traceback(run)
    for task, reason in (("file in the way", "is not a directory"), ("disk full, new directory", "No space left"),
                         ("disk full", "No space left")):
        result = run.task(task)
        assert result["status"] == "failed", run.describe()
        assert reason in result["result"]["msg"] and "Nothing was sent" in result["result"]["msg"], result
    assert control.log() == [], "a request was sent for a destination that cannot be written"


def test_check_mode_checks_the_destination_and_creates_nothing(sandbox, control, run_play, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = tmp_path / "new" / "deeper" / "k.token"
    run = run_play([
        dict(key_task("k", str(target)), name="would write"),
        dict(key_task("k", str(blocker / "k.token")), name="would fail"),
    ], check=True)
    assert run.task("would write")["status"] == "changed", run.describe()
    assert run.task("would write")["result"]["token_written"] is False
    assert not (tmp_path / "new").exists(), "check mode created the token directory"
    assert run.task("would fail")["status"] == "failed", run.describe()
    assert writes(control.log()) == []
    assert sandbox.keys_named("k") == []


@pytest.mark.parametrize("how", ["timeout keyword", "ANSIBLE_TASK_TIMEOUT"])
def test_a_task_timeout_too_short_for_the_api_is_refused_before_any_request(sandbox, control, run_play, tmp_path, how):
    # When Ansible's timeout ends a task, the module keeps running: a key it creates then would have no token
    # file (the list request is slowed down so that the old code created it after the task had timed out).
    control.fault(kind="delay", seconds=4, method="GET", path=API)
    task = key_task("slow", str(tmp_path / "slow.token"))
    if how == "timeout keyword":
        task["timeout"] = 2
    run = run_play([task], extra_env={"ANSIBLE_TASK_TIMEOUT": "2"} if how == "ANSIBLE_TASK_TIMEOUT" else None)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    msg = result["result"]["msg"]
    assert "timeout" in msg and "(2 + 3) x 5 = 25 s" in msg and "Nothing was sent" in msg, msg
    assert "at least 35" in msg, msg
    time.sleep(5)  # the old code's module sent its create by now
    assert control.log() == [] and sandbox.keys_named("slow") == []


def test_the_task_timeout_check_reads_the_tasks_environment_as_the_module_does(sandbox, control, run_play, tmp_path):
    # The module takes api_timeout from its environment, which the task's environment: keyword sets.
    task = dict(key_task("env", str(tmp_path / "env.token")), timeout=60, environment={"LATITUDESH_API_TIMEOUT": "20"})
    run = run_play(yaml.safe_dump(build_play([task])),
                   extra_env={"LATITUDESH_API_TIMEOUT": "1", "LATITUDESH_API_RETRIES": "0"})
    result = run.task("case")
    msg = result["result"].get("msg", "")
    assert result["status"] == "failed" and "(0 + 3) x 20 = 60 s" in msg and "at least 70" in msg, run.describe()
    assert control.log() == []


def test_a_task_timeout_that_leaves_room_for_the_api_is_accepted(sandbox, control, run_play, tmp_path):
    path = tmp_path / "roomy.token"
    run = run_play([dict(key_task("roomy", str(path)), timeout=40)])
    assert run.task("case")["status"] == "changed", run.describe()
    assert [key["token"] for key in sandbox.keys_named("roomy")] == [read(str(path))]


# --------------------------------------------------------------------------- a write that fails after the API answered


def run_in_background(run_play, tasks, **kwargs):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("run", run_play(tasks, **kwargs)))
    thread.start()
    return thread, box


def test_token_that_cannot_be_written_after_a_create_deletes_the_key_again(sandbox, control, run_play, tmp_path):
    """The disk fills up while the POST is in flight: the key just created is deleted again, nothing changed."""
    with small_filesystem(str(tmp_path / "disk")) as disk:
        control.fault(method="POST", path=API, kind="delay", seconds=2.0)
        thread, box = run_in_background(run_play, [key_task("ci-new", os.path.join(disk, "ci-new.token"))])
        # The lock file appears once the destination was checked and the task holds the directory.
        wait_for(lambda: os.path.exists(os.path.join(disk, ".latitudesh.lock")), what="the directory lock")
        fill(disk)
        thread.join(120)
        run = box["run"]
        assert not os.path.exists(os.path.join(disk, "ci-new.token"))
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    msg = result["result"]["msg"]
    assert "deleted again" in msg and "nothing changed" in msg and "No space left" in msg, msg
    assert result["result"]["changed"] is False
    assert sandbox.keys_named("ci-new") == [], "the key whose token was lost still exists"
    log = control.log()
    assert [entry["method"] for entry in writes(log)] == ["POST", "DELETE"], log
    assert "token" not in result["result"]


def test_token_that_cannot_be_written_after_a_rotate_says_so(sandbox, control, run_play, tmp_path):
    """A rotate cannot be undone: the task fails saying the key was rotated and how to get a new token."""
    with small_filesystem(str(tmp_path / "disk")) as disk:
        path = os.path.join(disk, "monitoring.token")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(sandbox.key("monitoring")["token"])
        old_token = sandbox.key("monitoring")["token"]
        control.fault(method="PUT", path=ITEM, kind="delay", seconds=2.0)
        thread, box = run_in_background(run_play, [key_task("monitoring", path, state="regenerated")])
        wait_for(lambda: os.path.exists(os.path.join(disk, ".latitudesh.lock")), what="the directory lock")
        fill(disk)
        thread.join(120)
        run = box["run"]
        assert not os.path.exists(path), "the file with the old, now invalid token was left behind"
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    msg = result["result"]["msg"]
    for words in ("was rotated", "no longer works", "state=regenerated", "No space left", path):
        assert words in msg, (words, msg)
    assert result["result"]["changed"] is True
    assert not authenticates(sandbox, old_token)
    assert [entry["method"] for entry in writes(control.log())] == ["PUT"]


# --------------------------------------------------------------------------- the role


def test_role_input_that_cannot_be_a_file_is_refused_before_any_request(sandbox, control, run_play, token_dir):
    bad = [
        ("t" * 300, [{"name": "ok"}]),
        ("tab\tteam", [{"name": "ok"}]),
        (".hidden", [{"name": "ok"}]),
        ("platform", [{"name": "k" * 250}, {"name": u"\u00e9" * 150}, {"name": "nul\x00key"}, {"name": ".."},
                      {"name": "."}, {"name": ".dotted"}, {"name": "new\nline"}]),
    ]
    run = run_play(role_play(token_dir, bad))
    assert_no_traceback(run)
    failed = [entry for entry in run.results if entry["status"] == "failed"]
    assert len(failed) == 1, run.describe()
    msg = failed[0]["result"]["msg"]
    for fragment in ("team_api_keys_teams[0].name", "300 bytes", "team_api_keys_teams[1].name", "control character",
                     "team_api_keys_teams[2].name", "starts with '.'", "api_keys[0].name", "256 bytes",
                     "api_keys[1].name", "300 bytes", "api_keys[2].name", "NUL", "api_keys[3].name", "api_keys[4].name",
                     "api_keys[5].name", "api_keys[6].name"):
        assert fragment in msg, (fragment, msg)
    assert "must not contain '/'" not in msg
    assert control.log() == []
    assert not os.path.exists(token_dir)


def test_role_writes_each_token_as_it_goes_and_shows_diffs(sandbox, control, run_play, token_dir):
    keys = [{"name": "d1"}, {"name": "d2", "read_only": True}, {"name": "monitoring", "allowed_ips": ["10.9.0.0/16"]}]
    teams = [("platform", keys)]
    run = run_play(role_play(token_dir, teams), diff=True, extra_env={"ANSIBLE_STDOUT_CALLBACK": "default"})
    assert run.rc == 0, run.describe()
    for name in ("d1", "d2"):
        path = os.path.join(token_dir, "platform", name + ".token")
        assert read(path) == sandbox.key(name)["token"] and mode(path) == 0o600
    # Each converged key is labelled and its diff shown: the converge loop has no no_log.
    for label in ("d1 (create)", "d2 (create)", "monitoring (update)"):
        assert label in run.stdout, run.describe()
    assert run.stdout.count('+    "name": "d1"') == 1 and run.stdout.count('+    "name": "d2"') == 1, run.stdout
    assert re.search(r"^\+\s+\"10.9.0.0/16\"", run.stdout, re.M), run.stdout
    summary = run.task("Summarise team platform")["result"]["msg"]
    assert summary["created"] == ["d1", "d2"] and summary["updated"] == ["monitoring"], summary
    for token in (sandbox.key("d1")["token"], sandbox.key("d2")["token"]):
        assert token not in run.text


def test_role_summary_in_check_mode_is_labelled_a_prediction(sandbox, control, run_play, token_dir):
    run = run_play(role_play(token_dir, [("platform", [{"name": "p1"}])]), check=True)
    assert run.rc == 0, run.describe()
    summary = run.task("Summarise team platform")["result"]["msg"]
    assert summary["created"] == ["p1"] and "prediction" in summary["note"], summary
    assert writes(control.log()) == [] and not os.path.exists(os.path.join(token_dir, "platform", "p1.token"))


def test_two_role_runs_at_once_make_one_key_per_name(sandbox, control, runner, token_dir):
    """Same team, same token directory, 700 ms API latency: exactly one key per name, every file works."""
    control.latency(700)
    names = ["c1", "c2", "c3"]
    play = role_play(token_dir, [("platform", [{"name": name} for name in names])], api_timeout=20)
    env = {"LATITUDESH_API_URL": sandbox.url, "LATITUDESH_AUTH_TOKEN": sandbox.admin_token()}
    runs = run_jobs([Job(number, runner.run, play, "concurrent-%d" % number, extra_env=env) for number in (1, 2)],
                    max_workers=2)
    control.latency(0)
    created = []
    for number in (1, 2):
        run = job_result(runs, number)
        assert run.rc == 0, run.describe()
        created += run.task("Summarise team platform")["result"]["msg"]["created"]
    assert sorted(created) == names, "the summaries do not report what the runs did: %s" % created
    for name in names:
        key = sandbox.key(name)  # exactly one
        token = read(os.path.join(token_dir, "platform", name + ".token"))
        assert token == key["token"] and authenticates(sandbox, token)


def test_interrupt_after_some_creates_loses_at_most_the_one_in_flight(sandbox, control, runner, artifacts, token_dir):
    """Ctrl-C after 3 of 6 creates: every key that exists has a working token file, except at most one."""
    control.latency(400)
    names = ["i%d" % number for number in range(1, 7)]
    run_dir = artifacts.new_dir("runs", "interrupt")
    playbook = os.path.join(run_dir, "playbook.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(role_play(token_dir, [("platform", [{"name": name} for name in names])]))
    env = runner.env(run_dir, {"LATITUDESH_API_URL": sandbox.url, "LATITUDESH_AUTH_TOKEN": sandbox.admin_token()})
    proc = subprocess.Popen(["ansible-playbook", "-i", artifacts.inventory, playbook], cwd=run_dir, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for(lambda: sum(1 for entry in control.log() if entry["method"] == "POST") >= 3, timeout=120,
                 what="3 creates")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        output = proc.communicate(timeout=120)[0].decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(os.path.join(run_dir, "stdout.txt"), "w", encoding="utf-8") as handle:
        handle.write(output)
    # An interrupted ansible-core leaves its temporary directory behind, and a module's AnsiballZ
    # payload in it embeds the module's arguments (the admin token): ansible-core's own behaviour,
    # documented in docs/reliability.md. Remove it, so the session's leak scan judges the rest.
    shutil.rmtree(os.path.join(run_dir, "ansible-remote-tmp"), ignore_errors=True)
    control.latency(0)
    time.sleep(1.0)  # a request still in flight at the sandbox finishes
    existing = [key for key in sandbox.team()["keys"] if key["name"] in names]
    assert 3 <= len(existing) < len(names), "the interrupt did not land between creates: %s" % output[-2000:]
    without_file = []
    for key in existing:
        path = os.path.join(token_dir, "platform", key["name"] + ".token")
        if not (os.path.exists(path) and read(path) == key["token"] and authenticates(sandbox, key["token"])):
            without_file.append(key["name"])
    assert len(without_file) <= 1, "keys without a working token file: %s\n%s" % (without_file, output[-3000:])


def test_deleting_keys_removes_their_token_files(sandbox, control, run_play, token_dir):
    team_dir = os.path.join(token_dir, "platform")
    first = run_play(role_play(token_dir, [("platform", [{"name": "a"}, {"name": "b"}, {"name": "c"}])]))
    assert first.rc == 0, first.describe()
    files = sorted(name for name in os.listdir(team_dir) if name.endswith(".token"))
    assert files == ["a.token", "b.token", "c.token"]
    declared = [{"name": "a", "state": "absent"}, {"name": "b"}, {"name": "ci-deployer"}, {"name": "monitoring"}]
    second = run_play(role_play(token_dir, [("platform", declared)], purge=True))
    assert second.rc == 0, second.describe()
    assert sorted(name for name in os.listdir(team_dir) if name.endswith(".token")) == ["b.token"]
    assert sandbox.keys_named("a") == [] and sandbox.keys_named("c") == []
    summary = second.task("Summarise team platform")["result"]["msg"]
    assert sorted(summary["deleted"]) == ["a", "c"], summary


def _lose_token(path, how):
    """Leave ``path`` without its token: deleted, emptied, or a symlink that points nowhere."""
    os.unlink(path)
    if how == "emptied":
        open(path, "w").close()
    elif how == "dangling-symlink":
        os.symlink(path + ".gone", path)


@pytest.mark.parametrize("how", ["deleted", "emptied", "dangling-symlink"])
def test_missing_token_file_warns_and_can_be_reissued(sandbox, control, run_play, token_dir, how):
    path = os.path.join(token_dir, "platform", "m1.token")
    teams = [("platform", [{"name": "m1"}])]
    assert run_play(role_play(token_dir, teams)).rc == 0
    _lose_token(path, how)
    control.clear_log()
    warned = run_play(role_play(token_dir, teams))
    assert warned.rc == 0, warned.describe()
    assert "[WARNING]" in warned.text and path in warned.text and "team_api_keys_reissue_missing_tokens" in warned.text
    assert writes(control.log()) == []
    control.clear_log()
    reissued = run_play(role_play(token_dir, teams, reissue=True))
    assert reissued.rc == 0, reissued.describe()
    assert [entry["method"] for entry in writes(control.log())] == ["PUT"]
    assert read(path) == sandbox.key("m1")["token"] and authenticates(sandbox, read(path))
    assert not os.path.islink(path)
    assert reissued.task("Summarise team platform")["result"]["msg"]["rotated"] == ["m1"]
    control.clear_log()
    again = run_play(role_play(token_dir, teams, reissue=True))
    assert again.rc == 0 and writes(control.log()) == [], again.describe()


def test_renaming_a_key_by_id_moves_its_token_file(sandbox, control, run_play, token_dir):
    team_dir = os.path.join(token_dir, "platform")
    assert run_play(role_play(token_dir, [("platform", [{"name": "ren-a"}])])).rc == 0
    key = sandbox.key("ren-a")
    control.clear_log()
    renamed = run_play(role_play(token_dir, [("platform", [{"id": key["id"], "name": "ren-b"}])], reissue=True))
    assert renamed.rc == 0, renamed.describe()
    assert [entry["method"] for entry in writes(control.log())] == ["PATCH"], "renamed, not rotated"
    assert "[WARNING]" not in renamed.text, renamed.describe()
    assert read(os.path.join(team_dir, "ren-b.token")) == key["token"] and authenticates(sandbox, key["token"])
    assert not os.path.lexists(os.path.join(team_dir, "ren-a.token"))
    assert renamed.task("Summarise team platform")["result"]["msg"]["updated"] == ["ren-b"]
    control.clear_log()
    again = run_play(role_play(token_dir, [("platform", [{"id": key["id"], "name": "ren-b"}])], reissue=True))
    assert again.rc == 0 and writes(control.log()) == [] and "[WARNING]" not in again.text, again.describe()


def test_two_keys_that_swap_names_keep_both_tokens_through_a_rotation(sandbox, control, run_play, token_dir):
    team_dir = os.path.join(token_dir, "platform")
    assert run_play(role_play(token_dir, [("platform", [{"name": "sw-a"}, {"name": "sw-b"}])])).rc == 0
    key_a, key_b = sandbox.key("sw-a"), sandbox.key("sw-b")
    swapped = [{"id": key_a["id"], "name": "sw-b"}, {"id": key_b["id"], "name": "sw-a"}]
    run = run_play(role_play(token_dir, [("platform", swapped)]))
    assert run.rc == 0 and "[WARNING]" in run.text, run.describe()
    rotate_b = [swapped[0], dict(swapped[1], state="regenerated")]
    rotated = run_play(role_play(token_dir, [("platform", rotate_b)]))
    assert rotated.rc == 0, rotated.describe()
    aside = os.path.join(team_dir, "sw-a.%s.token" % key_a["id"])
    assert read(aside) == key_a["token"] and authenticates(sandbox, key_a["token"]), "A's working token is kept"
    new_b = sandbox.key("sw-a")["token"]
    assert read(os.path.join(team_dir, "sw-a.token")) == new_b and authenticates(sandbox, new_b)


def holders(directory, token):
    """The names of the token files in ``directory`` (hidden ones too) that hold ``token``."""
    return sorted(name for name in os.listdir(directory)
                  if name.endswith(".token") and os.path.isfile(os.path.join(directory, name))
                  and read(os.path.join(directory, name)) == token)


def flat(text):
    """``text`` with every run of white space made one space (a long warning may be wrapped)."""
    return " ".join(text.split())


def test_keys_rotated_in_turn_into_one_token_path_keep_every_token(sandbox, control, run_play, token_dir):
    """Two keys rotated in a loop into one shared token_path, three runs: each run sets the other key's file
    aside, under a free name once the first one is taken; no token is ever lost."""
    shared = os.path.join(token_dir, "shared.token")
    loop = {"name": "rotate", KEY: {"name": "{{ item }}", "state": "regenerated", "token_path": shared},
            "loop": ["ka", "kb"], "ignore_errors": True}
    for number in (1, 2, 3):
        run = run_play([loop], name="shared-%d" % number)
        assert_no_traceback(run)
        assert run.task("rotate")["status"] == "changed", run.describe()
        key_a, key_b = sandbox.key("ka"), sandbox.key("kb")
        assert read(shared) == key_b["token"] and authenticates(sandbox, key_b["token"]) and mode(shared) == 0o600
        # ka's working token was set aside, to the file the warning names.
        kept = holders(token_dir, key_a["token"])
        assert len(kept) == 1 and kept[0].startswith("shared.%s." % key_a["id"]), (number, kept)
        assert os.path.join(token_dir, kept[0]) in flat(run.text), run.describe()
        assert authenticates(sandbox, key_a["token"]) and mode(os.path.join(token_dir, kept[0])) == 0o600
        expected = ["POST", "POST"] if number == 1 else ["PUT", "PUT"]
        assert [entry["method"] for entry in writes(control.log())] == expected
        control.clear_log()
    assert "shared.%s.2.token" % key_a["id"] in os.listdir(token_dir), "run 2 found the first aside name taken"


def test_a_rotate_into_a_file_whose_aside_name_would_be_too_long_is_refused_before_any_request(
        sandbox, control, run_play, token_dir):
    """The file holds another key's token and ``<name>.<its id>.token`` would be over 255 bytes: nothing is sent."""
    path = os.path.join(token_dir, "tok", "n" * 244 + ".token")
    assert run_play([key_task("ln-owner", path)], name="owner").rc == 0
    owner = sandbox.key("ln-owner")
    status, _body = api_request(sandbox, "POST", API, sandbox.admin_token(),
                                {"data": {"type": "api_keys", "attributes": {"name": "ln2"}}})
    assert status == 201
    ln2 = sandbox.key("ln2")
    control.clear_log()
    run = run_play([key_task("ln2", path, state="regenerated")])
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    msg = result["result"]["msg"]
    for words in (path, owner["id"], "bytes", "shorter", "Nothing was sent"):
        assert words in msg, (words, msg)
    assert "free space" not in msg
    assert writes(control.log()) == []
    assert sandbox.key("ln2")["token"] == ln2["token"] and authenticates(sandbox, ln2["token"]), "ln2 not rotated"
    assert read(path) == owner["token"] and authenticates(sandbox, owner["token"])


def test_a_rotated_token_whose_file_cannot_be_set_aside_is_kept_where_the_message_says(
        sandbox, control, run_play, token_dir):
    """The record ties the file to an older key of the same name (deleted and made again elsewhere), so only the
    rotate's answer shows it is another key; its aside name would be over 255 bytes. The new token is kept under
    a rescue name that the message gives; moving the other file away and a state=present run put it in place."""
    directory = os.path.join(token_dir, "tok")
    path = os.path.join(directory, "n" * 244 + ".token")
    assert run_play([key_task("ln2", path)], name="first").rc == 0
    old = sandbox.key("ln2")
    assert api_request(sandbox, "DELETE", "%s/%s" % (API, old["id"]), sandbox.admin_token())[0] in (200, 204)
    status, _body = api_request(sandbox, "POST", API, sandbox.admin_token(),
                                {"data": {"type": "api_keys", "attributes": {"name": "ln2"}}})
    assert status == 201
    control.clear_log()
    run = run_play([key_task("ln2", path, state="regenerated")], name="rotate")
    assert_no_traceback(run)
    result = run.task("case")
    assert result["status"] == "failed", run.describe()
    key = sandbox.key("ln2")
    assert key["id"] != old["id"] and [entry["method"] for entry in writes(control.log())] == ["PUT"]
    msg = result["result"]["msg"]
    rescued = re.search(r"safe in (\S+) \(mode 0600", msg).group(1)
    assert rescued == result["result"]["token_rescued_to"] and os.path.dirname(rescued) == directory, msg
    assert read(rescued) == key["token"] and authenticates(sandbox, key["token"]) and mode(rescued) == 0o600
    for words in ("was rotated", key["id"], old["id"], "bytes", "state=present"):
        assert words in msg, (words, msg)
    assert "free space" not in msg and key["token"] not in run.text
    assert read(path) == old["token"], "the file the record ties to the other key is kept"
    # Follow the advice: move that file away, then run the task with state=present.
    os.rename(path, os.path.join(directory, "old-ln2.token"))
    control.clear_log()
    placed = run_play([key_task("ln2", path)], name="place")
    assert placed.task("case")["status"] == "changed", placed.describe()
    assert placed.task("case")["result"]["token_moved_from"] == rescued
    assert writes(control.log()) == []
    assert read(path) == key["token"] and authenticates(sandbox, key["token"]) and not os.path.lexists(rescued)


def test_missing_token_file_warning_sends_no_write(sandbox, control, run_play, token_dir):
    teams = [("platform", [{"name": "m2"}])]
    assert run_play(role_play(token_dir, teams)).rc == 0
    os.unlink(os.path.join(token_dir, "platform", "m2.token"))
    control.clear_log()
    run = run_play(role_play(token_dir, teams))
    assert run.rc == 0 and "[WARNING]" in run.text, run.describe()
    assert writes(control.log()) == []
    assert not os.path.exists(os.path.join(token_dir, "platform", "m2.token"))


def test_role_repairs_modes_and_replaces_symlinks(sandbox, control, run_play, token_dir, tmp_path):
    teams = [("platform", [{"name": "s1"}, {"name": "s2"}])]
    assert run_play(role_play(token_dir, teams)).rc == 0
    team_dir = os.path.join(token_dir, "platform")
    os.chmod(token_dir, 0o777)
    os.chmod(team_dir, 0o755)
    os.chmod(os.path.join(team_dir, "s1.token"), 0o644)
    outside = tmp_path / "outside.txt"
    outside.write_text("not a token")
    os.unlink(os.path.join(team_dir, "s2.token"))
    os.symlink(str(outside), os.path.join(team_dir, "s2.token"))
    run = run_play(role_play(token_dir, [("platform", [{"name": "s1"}, {"name": "s2", "state": "regenerated"}])]))
    assert run.rc == 0, run.describe()
    assert mode(token_dir) == 0o700 and mode(team_dir) == 0o700
    assert mode(os.path.join(team_dir, "s1.token")) == 0o600
    s2 = os.path.join(team_dir, "s2.token")
    assert not os.path.islink(s2) and read(s2) == sandbox.key("s2")["token"] and mode(s2) == 0o600
    assert outside.read_text() == "not a token", "the token was written through the symlink"


def test_vault_token_file_reads_with_ansible_vault_view(sandbox, control, run_play, token_dir, tmp_path, artifacts):
    password = "correct horse battery staple"
    artifacts.add_secret(password)
    run = run_play(role_play(token_dir, [("platform", [{"name": "v1"}])], vault=True),
                   extra_env={"VAULT_PASSWORD": password}, verbosity=3)
    assert run.rc == 0, run.describe()
    path = os.path.join(token_dir, "platform", "v1.token")
    content = read(path)
    token = sandbox.key("v1")["token"]
    assert content.startswith("$ANSIBLE_VAULT;") and token not in content
    password_file = tmp_path / "vault-password"
    password_file.write_text(password + "\n")
    view = subprocess.run(["ansible-vault", "view", "--vault-password-file", str(password_file), path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert view.returncode == 0, view.stderr
    assert view.stdout.decode("utf-8").strip() == token
    assert password not in run.text and token not in run.text


def test_role_planning_errors_name_team_and_key_and_advice_the_role_can_follow(sandbox, control, run_play, token_dir):
    token = sandbox.admin_token()
    for _twin in range(2):
        status, _body = api_request(sandbox, "POST", API, token,
                                    {"data": {"type": "api_keys", "attributes": {"name": "twin"}}})
        assert status == 201
    control.clear_log()
    run = run_play(role_play(token_dir, [("platform", [{"name": "twin"}, {"name": "admin", "state": "regenerated"}])]))
    failed = [entry for entry in run.results if entry["status"] == "failed"]
    assert len(failed) == 1, run.describe()
    msg = failed[0]["result"]["msg"]
    assert "Team 'platform', key 'twin'" in msg and "id:" in msg, msg
    assert "Team 'platform', key 'admin'" in msg and "auth_token" in msg, msg
    assert "force" not in msg and "set_fact" not in msg and "Give id" not in msg, msg
    assert writes(control.log()) == []
    # The advice works: with an id, the role manages one of the twins.
    twin_id = sandbox.keys_named("twin")[0]["id"]
    fixed = run_play(role_play(token_dir, [("platform", [{"name": "twin", "id": twin_id, "read_only": True}])]))
    assert fixed.rc == 0, fixed.describe()
    assert [key["read_only"] for key in sandbox.keys_named("twin") if key["id"] == twin_id] == [True]
