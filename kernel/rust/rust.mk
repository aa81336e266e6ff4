# SPDX-License-Identifier: GPL-2.0
# Included by kernel/pciem/Kbuild. rustcore.o_shipped is the shared Rust
# logic (this directory's shim over pciem-core), built and checked by
# `cargo xtask kbuild`; the rule gives it the .cmd file modpost needs.
$(obj)/rustcore.o: $(src)/rustcore.o_shipped FORCE
	$(call if_changed,copy)
targets += rustcore.o
