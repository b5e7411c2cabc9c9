# The HiCD variants of the round-3 development of issue 11 (docs/results.md §0d), fixed before
# any of them was run. tools/run_experiments.py --variants this file; select_variant.py picks.
#   ca_sched       the §0 pick (change-aware change terms, weights decayed linearly to 0),
#                  re-run on the current code as the control
#   ca_sched_sem1  the same with one semantic term: sem_cross and sem_global off. Issue 11's
#                  gradient probe found that both mostly repeat sem_self (student-gradient
#                  cosine about 0.90 and 0.81-0.93), so with all three at weight 1 the encoder
#                  is distilled at an effective weight near 3
#   ca_sched_fit   the five terms of ca_sched plus FitNets feature MSE on the same feature
#                  points (feature_mse.py), all seven decayed alike
variants = dict(
    ca_sched=dict(mixins=['hicd_change_aware.py', 'hicd_schedule_linear.py']),
    ca_sched_sem1=dict(mixins=['hicd_change_aware.py', 'hicd_schedule_linear.py'],
                       cfg_options=['model.distill_terms.sem_cross=None',
                                    'model.distill_terms.sem_global=None']),
    ca_sched_fit=dict(mixins=['hicd_change_aware.py', 'feature_mse.py',
                              'hicd_schedule_linear.py']),
)
