# ChangeFormer on the synthetic dataset, sized for a CPU ("mit-b0-lite"): the full MiT-b0
# encoder, a decoder with embedding dimension 64 whose change feature stays at 1/4 (no
# transposed-conv upsampling; mmseg resizes the logits), CE (1:2) + Dice.
# Semantic features: MiT-b0 stages (N, 32|64|160|256, H/4..H/32) per date;
# change feature: (N, 64, H/4, W/4).
# The paper-sized decoder (embedding 256, upsampled to 1/1) is
# configs/_base_/models/changeformer_mit-b0.py (130 GMACs per 256^2 pair).
_base_ = [
    '../_base_/models/changeformer_mit-b0.py', '../_base_/datasets/synthetic_cd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cpu_1k.py'
]
model = dict(decode_head=dict(channels=64, final_upsample=1))
