/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * pciem_userspace.h - what a userspace device program includes: the PCIem
 * ABI (pciem.h, generated from crates/pciem-abi) plus the standard PCI
 * register definitions (PCI_BASE_ADDRESS_*, PCI_COMMAND_*, capability IDs)
 * that device programs use together with it.
 */
#ifndef PCIEM_UAPI_PCIEM_USERSPACE_H
#define PCIEM_UAPI_PCIEM_USERSPACE_H

#include <linux/pci_regs.h>
#include "pciem.h"

#endif /* PCIEM_UAPI_PCIEM_USERSPACE_H */
