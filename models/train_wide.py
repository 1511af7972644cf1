#!/usr/bin/env python3
"""source14_bc.h5 and source16_bc.h5: source_bc (train_source_target.py's
Source network and data: breast cancer features 0-9, one encrypted input)
with wider inputs and fc1 weights, so that the accumulator the hidden
lookup reads reaches the widths of the seed's flow: 14 bits (Concrete ML
reports 14 for the seed's source model) and 16 bits (the limit of exact
lookups, Concrete's and veil's). "Widest accumulator" is what `veil compile`
prints: the bits of the lookup input's range (calibrated, with the
compiler's margin).

- source14_bc: 6-bit inputs, 7-bit fc1 weights, 16 hidden, 4-bit ReLU.
- source16_bc: 7-bit inputs, 8-bit fc1 weights, 6 hidden, 2-bit ReLU.

Both heads use ternary (2-bit) fc2 weights: veil decodes the output
accumulator at the program's width (the widest accumulator), so the head
after a wide lookup must keep the output's noise small (with source_bc's
4-bit head, `veil compile` finds no parameter set for the output at 14
bits). "source17_bc" is a 17-bit variant (8-bit inputs and fc1 weights)
that veil must refuse, naming the layer: a test fixture, written only on
request (the tests write it in a temporary directory), never committed.

    python train_wide.py                 (writes both files; ~17 s on 2 cores)
    VEIL_MODELS_OUT=/tmp python train_wide.py source17_bc
"""

import sys

import sample_common as sc
import train_source_target as st

# name: (input bits, fc1 weight bits, hidden units, ReLU bits, fc2 weight bits)
CONFIGS = {
    "source14_bc": (6, 7, 16, 4, 2),
    "source16_bc": (7, 8, 6, 2, 2),
    "source17_bc": (8, 8, 24, 4, 2),
}


def make(name):
    """Trains and exports CONFIGS[name] (to VEIL_MODELS_OUT or models/); returns
    the exporter's report."""
    in_bits, w_bits, hid, act_bits, out_bits = CONFIGS[name]
    sc.seed_all(st.SEED)
    xtr, xte, ytr, yte = sc.breast_cancer(st.SEED)
    a_tr, a_te = xtr[:, :st.PART].copy(), xte[:, :st.PART].copy()
    model = st.Source(in_bits, w_bits, hid, act_bits, out_bits)
    model = sc.train(model, a_tr, ytr, epochs=60, lr=0.01, batch=32, seed=st.SEED)
    return sc.export_model(model, a_tr, a_te, yte, name,
                           "breast cancer (sklearn), source model on features 0-9 (one "
                           "encrypted input): %d-bit inputs, %d-bit fc1 weights, %d hidden, "
                           "%d-bit ReLU, %d-bit fc2 weights" % CONFIGS[name], st.SEED)


def main(names):
    for name in names or ["source14_bc", "source16_bc"]:
        rep = make(name)
        assert rep["brevitas_accuracy"] >= 0.9, rep["brevitas_accuracy"]


if __name__ == "__main__":
    main(sys.argv[1:])
