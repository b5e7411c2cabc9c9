# The HiCD variants of the development phase of issue 11 (docs/results.md, "Protocol"), fixed
# before any of them was run. tools/run_experiments.py --variants configs/_base_/hicd/dev_variants.py
# trains each as a `hicd` row; tools/experiments/select_variant.py picks one on val F1.
#   default      hicd_default.py: the five correlation terms (global = between different images)
#   ca_sched     + change-aware change-feature terms, weights decayed linearly to 0
#   ca_kd_sched  + response KD of the change logits
#   ca_kd_sched_ft  the same, student initialised from the teacher (fair control: ft_lq)
variants = dict(
    default=dict(mixins=[]),
    ca_sched=dict(mixins=['hicd_change_aware.py', 'hicd_schedule_linear.py']),
    ca_kd_sched=dict(mixins=['hicd_change_aware.py', 'hicd_response_kd.py',
                             'hicd_schedule_linear.py']),
    ca_kd_sched_ft=dict(mixins=['hicd_change_aware.py', 'hicd_response_kd.py',
                                'hicd_schedule_linear.py', 'from_teacher.py']),
)
