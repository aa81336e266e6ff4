//! The length of any x86-64 instruction the CPU would execute in 64-bit
//! kernel mode, for instructions the emulator does not handle: the kernel
//! skips such an instruction (completing it as a master abort) only when
//! its length is certain, so undefined or unknown encodings give `None`.

/// Bytes of immediate an opcode takes, given the operand-size state.
#[derive(Clone, Copy)]
enum Imm {
    None,
    B1,
    B2,
    /// 2 with an operand-size prefix, else 4.
    Z,
    /// 8 with REX.W, 2 with an operand-size prefix, else 4 (`mov r, imm`).
    V,
    /// `enter`: 2 + 1.
    B3,
}

/// How the one-byte opcode `op` continues: (has ModRM, immediate), or
/// `None` for an opcode that is not an instruction in 64-bit mode (or is a
/// prefix, handled by the caller).
fn one_byte(op: u8) -> Option<(bool, Imm)> {
    Some(match op {
        // ALU: r/m forms, then AL/eAX with an immediate.
        0x00..=0x3f => match op & 7 {
            0..=3 => (true, Imm::None),
            4 => (false, Imm::B1),
            5 => (false, Imm::Z),
            _ => return None, // push/pop seg, daa... (invalid) and prefixes
        },
        0x50..=0x5f => (false, Imm::None),
        0x63 => (true, Imm::None),
        0x68 => (false, Imm::Z),
        0x69 => (true, Imm::Z),
        0x6a => (false, Imm::B1),
        0x6b => (true, Imm::B1),
        0x6c..=0x6f => (false, Imm::None),
        0x70..=0x7f => (false, Imm::B1),
        0x80 | 0x83 => (true, Imm::B1),
        0x81 => (true, Imm::Z),
        0x84..=0x8f => (true, Imm::None),
        0x90..=0x99 | 0x9b..=0x9f => (false, Imm::None),
        0xa4..=0xa7 | 0xaa..=0xaf => (false, Imm::None),
        0xa8 => (false, Imm::B1),
        0xa9 => (false, Imm::Z),
        0xb0..=0xb7 => (false, Imm::B1),
        0xb8..=0xbf => (false, Imm::V),
        0xc0 | 0xc1 | 0xc6 => (true, Imm::B1),
        0xc2 | 0xca => (false, Imm::B2),
        0xc3 | 0xc9 | 0xcb | 0xcc | 0xcf => (false, Imm::None),
        0xc7 => (true, Imm::Z),
        0xc8 => (false, Imm::B3),
        0xcd => (false, Imm::B1),
        0xd0..=0xd3 | 0xd8..=0xdf => (true, Imm::None),
        0xd7 => (false, Imm::None),
        0xe0..=0xe7 | 0xeb => (false, Imm::B1),
        0xe8 | 0xe9 => (false, Imm::Z),
        0xec..=0xef => (false, Imm::None),
        0xf1 | 0xf4 | 0xf5 | 0xf8..=0xfd => (false, Imm::None),
        0xf6 | 0xf7 | 0xfe | 0xff => (true, Imm::None), // F6/F7 /0,/1: see caller
        _ => return None,
    })
}

/// The 0F map: (has ModRM, immediate), `None` if undefined here.
fn two_byte(op: u8) -> Option<(bool, Imm)> {
    Some(match op {
        0x05..=0x09 | 0x0b | 0x30..=0x35 | 0x37 | 0x77 | 0xa0..=0xa2 | 0xa8..=0xaa => {
            (false, Imm::None)
        }
        0xc8..=0xcf => (false, Imm::None),
        0x80..=0x8f => (false, Imm::Z),
        0x70..=0x73 | 0xa4 | 0xac | 0xba | 0xc2 | 0xc4..=0xc6 => (true, Imm::B1),
        0x00..=0x03 | 0x0d | 0x10..=0x1f | 0x20..=0x23 | 0x28..=0x2f | 0x40..=0x6f => {
            (true, Imm::None)
        }
        0x74..=0x76 | 0x78 | 0x79 | 0x7c..=0x7f | 0x90..=0x9f | 0xa3 | 0xa5 | 0xab => {
            (true, Imm::None)
        }
        0xad..=0xb9 | 0xbb..=0xc1 | 0xc3 | 0xc7 | 0xd0..=0xfe => (true, Imm::None),
        _ => return None,
    })
}

/// Bytes of ModRM, SIB and displacement starting at `b[0]` (the ModRM).
fn modrm_len(b: &[u8]) -> Option<usize> {
    let modrm = *b.first()?;
    let (md, rm) = (modrm >> 6, modrm & 7);
    if md == 3 {
        return Some(1);
    }
    let mut n = 1;
    let mut base5 = rm == 5;
    if rm == 4 {
        let sib = *b.get(1)?;
        n += 1;
        base5 = sib & 7 == 5;
    }
    n += match md {
        0 if base5 => 4,
        0 => 0,
        1 => 1,
        _ => 4,
    };
    Some(n)
}

/// The length of the instruction at the start of `bytes`, if it is a
/// defined 64-bit-mode instruction whose whole encoding is in `bytes` and
/// at most 15 bytes long.
pub fn length(bytes: &[u8]) -> Option<u8> {
    let mut i = 0;
    let (mut opsize, mut addr32) = (false, false);
    // Legacy prefixes.
    loop {
        match *bytes.get(i)? {
            0x66 => opsize = true,
            0x67 => addr32 = true,
            0xf0 | 0xf2 | 0xf3 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            _ => break,
        }
        i += 1;
    }
    let mut rex_w = false;
    if let 0x40..=0x4f = *bytes.get(i)? {
        rex_w = bytes.get(i).copied()? & 8 != 0;
        i += 1;
    }
    let op = *bytes.get(i)?;
    i += 1;
    let (modrm, imm) = match op {
        0x0f => {
            let op2 = *bytes.get(i)?;
            i += 1;
            match op2 {
                0x38 => {
                    i += 1;
                    (true, Imm::None)
                }
                0x3a => {
                    i += 1;
                    (true, Imm::B1)
                }
                _ => two_byte(op2)?,
            }
        }
        0xc4 | 0xc5 => {
            // VEX: C5 has one payload byte (map 0F), C4 two (map in mmmmm).
            let map = if op == 0xc5 {
                i += 1;
                1
            } else {
                let m = bytes.get(i)? & 0x1f;
                i += 2;
                m
            };
            i += 1; // the opcode
            match map {
                1 => (true, two_byte(*bytes.get(i - 1)?)?.1),
                2 => (true, Imm::None),
                3 => (true, Imm::B1),
                _ => return None,
            }
        }
        0xa0..=0xa3 => {
            // mov with a 64-bit (or 32-bit with 0x67) absolute offset.
            i += if addr32 { 4 } else { 8 };
            (false, Imm::None)
        }
        _ => one_byte(op)?,
    };
    // MOV to/from control and debug registers (0F 20..23) ignore `mod`:
    // the ModRM byte always names two registers, with no SIB or disp.
    let reg_only = op == 0x0f && matches!(bytes.get(i.checked_sub(1)?), Some(0x20..=0x23));
    if modrm && reg_only {
        i += 1;
    } else if modrm {
        let reg = (bytes.get(i)? >> 3) & 7;
        // 8F with a reg field other than 0 is AMD's XOP prefix, not POP.
        if op == 0x8f && reg != 0 {
            return None;
        }
        // x87 register forms include undefined encodings; MMIO never uses them.
        if (0xd8..=0xdf).contains(&op) && bytes.get(i)? >> 6 == 3 {
            return None;
        }
        i += modrm_len(bytes.get(i..)?)?;
        // test r/m, imm: F6 /0 /1 and F7 /0 /1 carry an immediate.
        if (op == 0xf6 || op == 0xf7) && reg < 2 {
            i += if op == 0xf6 {
                1
            } else if opsize && !rex_w {
                2
            } else {
                4
            };
        }
    }
    i += match imm {
        Imm::None => 0,
        Imm::B1 => 1,
        Imm::B2 => 2,
        Imm::B3 => 3,
        Imm::Z => {
            // REX.W wins over 0x66; near branches ignore 0x66 in 64-bit mode.
            if opsize && !rex_w && !matches!(op, 0xe8 | 0xe9 | 0x0f) {
                2
            } else {
                4
            }
        }
        Imm::V => {
            if rex_w {
                8
            } else if opsize {
                2
            } else {
                4
            }
        }
    };
    if i > 15 || i > bytes.len() {
        return None;
    }
    u8::try_from(i).ok()
}
