//! The size and field offsets of every ABI struct, pinned.
//!
//! Each entry below is checked at compile time against the real struct
//! (`size_of`/`offset_of!`), so a change of layout breaks the build here
//! before it can break the other side. The same table is exported as
//! [`PCIEM_LAYOUTS`] for the header generator, which emits matching
//! `_Static_assert`s into the C header, and for the C layout test.

use core::mem::{offset_of, size_of};

use crate::*;

/// One field of an ABI struct.
#[derive(Clone, Copy, Debug)]
pub struct FieldLayout {
    /// Rust name of the field (a raw identifier keeps its `r#`).
    pub name: &'static str,
    /// Byte offset in the struct.
    pub offset: usize,
}

impl FieldLayout {
    /// The field's name in C (without a raw-identifier prefix).
    pub fn c_name(&self) -> &'static str {
        self.name.strip_prefix("r#").unwrap_or(self.name)
    }
}

/// One ABI struct.
#[derive(Clone, Copy, Debug)]
pub struct StructLayout {
    /// C name of the struct (without `struct`).
    pub name: &'static str,
    /// `sizeof`.
    pub size: usize,
    /// Every field, in declaration order.
    pub fields: &'static [FieldLayout],
}

macro_rules! layouts {
    ($( $ty:ident = $size:literal { $( $field:tt @ $off:literal ),* $(,)? } )*) => {
        $(
            const _: () = {
                assert!(size_of::<$ty>() == $size);
                $( assert!(offset_of!($ty, $field) == $off); )*
            };
        )*

        /// Every ABI struct with its pinned layout.
        pub const PCIEM_LAYOUTS: &[StructLayout] = &[
            $(
                StructLayout {
                    name: stringify!($ty),
                    size: $size,
                    fields: &[ $( FieldLayout { name: stringify!($field), offset: $off } ),* ],
                },
            )*
        ];
    };
}

layouts! {
    pciem_version = 16 { abi_version @ 0, ring_size @ 4, event_size @ 8, reserved @ 12 }
    pciem_create_device = 8 { flags @ 0, reserved @ 4 }
    pciem_bar_config = 16 { bar_index @ 0, flags @ 4, size @ 8 }
    pciem_config_space = 16 {
        vendor_id @ 0, device_id @ 2, subsys_vendor_id @ 4, subsys_device_id @ 6,
        revision @ 8, class_code @ 9, header_type @ 12, interrupt_pin @ 13, reserved @ 14,
    }
    pciem_config_image = 12288 { config @ 0, wmask @ 4096, w1cmask @ 8192 }
    pciem_bar_info_query = 24 { bar_index @ 0, flags @ 4, size @ 8, bus_addr @ 16 }
    pciem_cap_config = 80 { cap_type @ 0, cap_size @ 4, offset @ 8, reserved @ 12, cap_data @ 16 }
    pciem_cap_msi_userspace = 4 {
        num_vectors_log2 @ 0, has_64bit @ 1, has_masking @ 2, reserved @ 3,
    }
    pciem_cap_msix_userspace = 12 {
        table_size @ 0, table_bar @ 2, pba_bar @ 3, table_offset @ 4, pba_offset @ 8,
    }
    pciem_cap_pm_userspace = 4 { no_soft_reset @ 0, pme_support @ 1, d1_support @ 2, d2_support @ 3 }
    pciem_cap_pcie_userspace = 8 {
        device_type @ 0, max_link_speed @ 1, max_link_width @ 2, flr @ 3, max_payload @ 4,
        reserved @ 5,
    }
    pciem_cap_vendor_userspace = 60 { data_len @ 0, reserved @ 2, data @ 4 }
    pciem_cap_pasid_userspace = 4 { max_pasid_width @ 0, exec @ 1, privileged @ 2, reserved @ 3 }
    pciem_cap_dsn_userspace = 8 { serial @ 0 }
    pciem_cap_vsec_userspace = 60 {
        vsec_id @ 0, vsec_rev @ 2, reserved @ 3, data_len @ 4, reserved2 @ 6, data @ 8,
    }
    pciem_cap_aer_userspace = 16 { uncor_mask @ 0, uncor_severity @ 4, cor_mask @ 8, reserved @ 12 }
    pciem_watchpoint_config = 24 { bar_index @ 0, offset @ 4, width @ 8, flags @ 12, addr @ 16 }
    pciem_eventfd_config = 8 { eventfd @ 0, reserved @ 4 }
    pciem_irq_inject = 16 { vector @ 0, kind @ 4, flags @ 8, reserved @ 12 }
    pciem_irqfd_config = 16 { eventfd @ 0, vector @ 4, kind @ 8, flags @ 12 }
    pciem_dma_op = 32 { bus_addr @ 0, user_addr @ 8, length @ 16, flags @ 24, reserved @ 28 }
    pciem_dma_atomic = 40 {
        bus_addr @ 0, operand @ 8, compare @ 16, result @ 24, op @ 32, flags @ 36,
    }
    pciem_dma_indirect = 40 {
        prp1 @ 0, prp2 @ 8, user_addr @ 16, length @ 24, page_size @ 32, flags @ 36,
    }
    pciem_p2p_op = 32 { target_addr @ 0, user_addr @ 8, length @ 16, flags @ 24, reserved @ 28 }
    pciem_bar_mode = 16 { bar_index @ 0, mode @ 4, flags @ 8, reserved @ 12 }
    pciem_trap_range = 24 { bar_index @ 0, flags @ 4, offset @ 8, length @ 16 }
    pciem_read_timeout = 8 { timeout_us @ 0, reserved @ 4 }
    pciem_read_completion = 16 { id @ 0, value @ 8 }
    pciem_dma_check_mode = 8 { mode @ 0, reserved @ 4 }
    pciem_surprise_remove = 8 { flags @ 0, reserved @ 4 }
    pciem_root_port = 8 { flags @ 0, reserved @ 4 }
    pciem_function = 8 { function @ 0, reserved @ 4 }
    pciem_reinsert = 8 { flags @ 0, reserved @ 4 }
    pciem_fault_rule = 32 { kind @ 0, bar @ 4, addr @ 8, len @ 16, count @ 24, flags @ 28 }
    pciem_aer_inject = 32 { severity @ 0, status @ 4, header_log @ 8, flags @ 24, reserved @ 28 }
    pciem_read_response = 64 { id @ 0, value @ 8, reserved @ 16 }
    pciem_read_responses = 4096 { slots @ 0 }
    pciem_event = 64 {
        seq @ 0, r#type @ 8, bar @ 12, offset @ 16, data @ 24, size @ 32, flags @ 36,
        timestamp_ns @ 40, id @ 48, ticket @ 56,
    }
    pciem_shared_ring = 65792 {
        head @ 0, consumer_state @ 4, reserved0 @ 8, tail @ 128, reserved1 @ 132, overflow @ 136, reserved2 @ 144,
        events @ 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_identifiers_get_their_c_name() {
        let event = PCIEM_LAYOUTS
            .iter()
            .find(|l| l.name == "pciem_event")
            .unwrap();
        assert_eq!(event.fields[1].c_name(), "type");
        assert_eq!(event.fields[0].c_name(), "seq");
    }

    #[test]
    fn every_ioctl_argument_has_a_layout() {
        for def in PCIEM_IOCTLS {
            if let Some(arg) = def.arg {
                let layout = PCIEM_LAYOUTS.iter().find(|l| l.name == arg);
                assert_eq!(layout.map(|l| l.size), Some(def.size), "{}", def.name);
            }
        }
    }
}
