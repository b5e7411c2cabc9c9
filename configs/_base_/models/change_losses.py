# The decode loss shared by every bi-temporal detector: class-weighted cross entropy (changed
# pixels count twice) + 0.5 x soft Dice of the changed class. The Dice term keeps a detector
# trained on degraded pairs from settling on "no change" everywhere, which plain CE did on
# some seeds (docs/results.md); mmseg's DiceLoss cannot, its ratio pools both classes.
loss_decode = [
    dict(type='WeightedCrossEntropyLoss', loss_weight=1.0, class_weight=[1.0, 2.0]),
    dict(type='ChangeDiceLoss', loss_weight=0.5),
]
