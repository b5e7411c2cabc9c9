# Student initialisation from the teacher: a HiCD variant mixin (tools/run_experiments.py
# --variant NAME=configs/_base_/hicd/from_teacher.py). The student starts from the HQ teacher's
# weights (same architecture) instead of random ones; its fair control is ft_lq, the teacher
# fine-tuned on LQ pairs with every distillation term off (docs/experiments.md).
model = dict(init_student_from_teacher=True)
