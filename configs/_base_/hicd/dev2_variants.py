# The HiCD variants of the round-2 development of issue 11 (docs/results.md §0c, rare changes),
# fixed before any of them was run. tools/run_experiments.py --variants this file.
#   ca_sched     the §0 pick: change-aware change-feature terms, weights decayed linearly to 0
#   ca_sched_ft  the same, student initialised from the teacher (fair control: ft_lq)
variants = dict(
    ca_sched=dict(mixins=['hicd_change_aware.py', 'hicd_schedule_linear.py']),
    ca_sched_ft=dict(mixins=['hicd_change_aware.py', 'hicd_schedule_linear.py',
                             'from_teacher.py']),
)
