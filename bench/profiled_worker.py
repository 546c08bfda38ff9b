# This file is part of the ISP suite.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""`trytond-worker` with each task profiled (cProfile): the statistics of
every task run go to `$ISP_PROFILE_DIR/<pid>-<task id>.prof`, to be read
with `bench/profiled_worker.py --report DIR` (summed over the tasks, the
`--top` first functions by cumulative time); each restart of a database
transaction (a TransactionError: the locks it asks) is logged in
`restarts.log` there.

    .venv/bin/python -m bench.profiled_worker -c trytond.conf -d DB -n 1

(bench/bench_shop.py --profile DIR runs its workers so.)  The worker's
processes are forked from this one: the patched `run_task` is theirs."""
import cProfile
import os
import sys

_RUN_TASK = []


def profiled_run_task(pool, task_id):
    """trytond's `run_task` under cProfile (module level: the process
    pool pickles it by name)"""
    profile = cProfile.Profile()
    profile.enable()
    try:
        return _RUN_TASK[0](pool, task_id)
    finally:
        profile.disable()
        profile.dump_stats(os.path.join(os.environ['ISP_PROFILE_DIR'],
                '%d-%d.prof' % (os.getpid(), task_id)))


def _patch():
    from trytond import worker
    from trytond.transaction import TransactionError
    _RUN_TASK.append(worker.run_task)
    worker.run_task = profiled_run_task
    fix = TransactionError.fix

    def logged_fix(self, extras):
        "Log each restart of a database transaction and what it asks"
        with open(os.path.join(os.environ['ISP_PROFILE_DIR'],
                    'restarts.log'), 'a') as log:
            log.write('%s %s\n' % (type(self).__name__, {
                        k: v for k, v in vars(self).items()
                        if not k.startswith('_')}))
        return fix(self, extras)
    TransactionError.fix = logged_fix


def report(directory, top=40, sort='cumulative'):
    "Print the statistics of the tasks profiled in `directory`"
    import pstats
    stats = None
    count = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.prof'):
            continue
        try:
            one = pstats.Stats(os.path.join(directory, name))
        except (EOFError, ValueError, TypeError):
            continue   # a task stopped with its worker: not written
        count += 1
        if stats is None:
            stats = one
        else:
            stats.add(one)
    if stats is None:
        print("no task profiled in %s" % directory)
        return
    print("%d tasks profiled" % count)
    stats.sort_stats(sort).print_stats(top)


def main():
    if sys.argv[1:2] == ['--report']:
        top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
        report(sys.argv[2], top=top)
        return 0
    _patch()
    from trytond.cli.worker import main as worker_main
    sys.argv[0] = 'trytond-worker'
    return worker_main()


if __name__ == '__main__':
    sys.exit(main())
