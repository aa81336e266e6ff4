//! `pciem_core::insn` against iced-x86: on random bytes and on generated
//! instances of every supported form, the decode must agree with iced's
//! (length, access width, load/store/immediate/string, register operand,
//! memory operand, immediate, REP), every form iced calls supported must
//! decode, every cut-short instance must be `Truncated`, and emulation must
//! match a reference model built on iced's operands.

#[path = "support/iced_view.rs"]
mod iced_view;

use iced_view::{ours, read_value, reference, supported, Access};
use pciem_core::insn::{decode, emulate, DecodeError, Memory, Regs, RFLAGS_DF};
use proptest::prelude::*;

/// Memory answering reads with [`read_value`] and recording accesses.
#[derive(Default)]
struct Recorder(Vec<Access>);

impl Memory for Recorder {
    type Error = ();
    fn read(&mut self, addr: u64, width: u8) -> Result<u64, ()> {
        self.0.push(Access::Read(addr, usize::from(width)));
        Ok(read_value(addr, usize::from(width)))
    }
    fn write(&mut self, addr: u64, width: u8, value: u64) -> Result<(), ()> {
        self.0.push(Access::Write(addr, usize::from(width), value));
        Ok(())
    }
}

/// Our decode agrees with iced whenever it succeeds; a refusal of
/// something iced calls supported must be a refused prefix (REX before a
/// legacy prefix); a `Truncated` must be iced running out of bytes too.
fn check_random(bytes: &[u8]) -> Result<(), TestCaseError> {
    let iced = supported(bytes);
    match decode(bytes) {
        Ok(insn) => prop_assert_eq!(Some(ours(&insn)), iced, "{:02x?}", bytes),
        Err(DecodeError::Truncated) => {
            prop_assert!(
                iced_view::iced(bytes, 0).1,
                "{:02x?}: iced decodes it",
                bytes
            )
        }
        Err(e) => prop_assert!(
            iced.is_none() || e == DecodeError::UnsupportedPrefix,
            "{:02x?}: iced says {:?}, ours {:?}",
            bytes,
            iced,
            e
        ),
    }
    Ok(())
}

/// The opcode bytes of every supported form.
const OPCODES: &[&[u8]] = &[
    &[0x88],
    &[0x89],
    &[0x8a],
    &[0x8b],
    &[0xc6],
    &[0xc7],
    &[0x63],
    &[0x0f, 0xb6],
    &[0x0f, 0xb7],
    &[0x0f, 0xbe],
    &[0x0f, 0xbf],
    &[0x0f, 0xc3],
    &[0xa4],
    &[0xa5],
    &[0xaa],
    &[0xab],
];

/// An instance of a supported form: legacy prefixes (66, the four ignored
/// segments, F3 on string forms), maybe REX, the opcode, a ModRM with a
/// memory operand (reg 0 for C6/C7, mostly), then random bytes for SIB,
/// displacement, immediate and whatever follows.
fn form() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            prop::sample::select(vec![0x66u8, 0x2e, 0x36, 0x3e, 0x26]),
            0..4,
        ),
        any::<bool>(),
        prop::option::of(0x40u8..=0x4f),
        0..OPCODES.len(),
        0u8..=2,
        any::<u8>(),
        prop::bool::weighted(0.05),
        any::<[u8; 15]>(),
    )
        .prop_map(|(legacy, rep, rex, op, md, modrm, odd, tail)| {
            let opcode = OPCODES[op];
            let string = matches!(opcode[0], 0xa4 | 0xa5 | 0xaa | 0xab);
            let mut b = legacy;
            if rep && string {
                b.insert(b.len() / 2, 0xf3);
            }
            b.extend(rex);
            b.extend_from_slice(opcode);
            if !string {
                let mut m = (md << 6) | (modrm & 0x3f);
                if matches!(opcode[0], 0xc6 | 0xc7) && !odd {
                    m &= 0xc7;
                }
                if odd {
                    m |= 0xc0;
                }
                b.push(m);
            }
            b.extend_from_slice(&tail);
            b.truncate(15);
            b
        })
}

/// Registers with a small RCX (so REP runs stay short) and a random DF.
fn regs() -> impl Strategy<Value = Regs> {
    (any::<[u64; 16]>(), any::<u64>(), 0u64..6, any::<bool>()).prop_map(
        |(mut gpr, rip, rcx, df)| {
            gpr[1] = rcx;
            Regs {
                gpr,
                rip,
                rflags: if df { RFLAGS_DF | 2 } else { 2 },
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_agree_with_iced(bytes in prop::collection::vec(any::<u8>(), 0..=15)) {
        check_random(&bytes)?;
    }

    #[test]
    fn random_bytes_after_a_supported_opcode_agree_with_iced(
        op in 0..OPCODES.len(),
        rex in prop::option::of(0x40u8..=0x4f),
        tail in prop::collection::vec(any::<u8>(), 0..=13),
    ) {
        let mut bytes: Vec<u8> = rex.into_iter().collect();
        bytes.extend_from_slice(OPCODES[op]);
        bytes.extend(tail);
        bytes.truncate(15);
        check_random(&bytes)?;
    }

    /// Generated forms: ours decodes exactly when iced calls the bytes a
    /// supported form, and then identically; every shorter cut of a decoded
    /// instance is `Truncated` for us and out-of-bytes for iced.
    #[test]
    fn generated_forms_agree_with_iced(bytes in form()) {
        let iced = supported(&bytes);
        let ours = decode(&bytes);
        match (&ours, iced) {
            (Ok(insn), Some(view)) => prop_assert_eq!(iced_view::ours(insn), view, "{:02x?}", bytes),
            (Err(_), None) => {}
            _ => prop_assert!(false, "{:02x?}: ours {:?}, iced {:?}", bytes, ours, iced),
        }
        if let Ok(insn) = ours {
            for cut in 0..usize::from(insn.len) {
                prop_assert_eq!(decode(&bytes[..cut]), Err(DecodeError::Truncated), "{:02x?}", &bytes[..cut]);
                prop_assert!(iced_view::iced(&bytes[..cut], 0).1, "{:02x?}", &bytes[..cut]);
            }
        }
    }

    /// Emulating a generated instance does what the reference model, built
    /// on iced's operands, does: the same accesses in the same order, the
    /// same registers after.
    #[test]
    fn emulation_matches_the_reference(bytes in form(), before in regs()) {
        let Ok(insn) = decode(&bytes) else { return Ok(()) };
        let (want_regs, want_log) = reference(&bytes, &before).expect("reference knows every supported form");
        let mut after = before;
        let mut mem = Recorder::default();
        emulate(&insn, &mut after, &mut mem).unwrap();
        prop_assert_eq!(mem.0, want_log, "{:02x?}", bytes);
        prop_assert_eq!(after, want_regs, "{:02x?}", bytes);
        prop_assert_eq!(insn.effective_address(&before), match insn.op {
            pciem_core::insn::Op::Movs { .. } => before.gpr[6],
            pciem_core::insn::Op::Stos { .. } => before.gpr[7],
            _ => match want_accesses_first(&bytes, &before) { Some(a) => a, None => return Ok(()) },
        });
    }
}

/// The address of the reference model's first access (for a REP string
/// instruction with RCX = 0 there is none).
fn want_accesses_first(bytes: &[u8], regs: &Regs) -> Option<u64> {
    let (_, log) = reference(bytes, regs)?;
    log.first().map(|a| match *a {
        Access::Read(addr, _) | Access::Write(addr, _, _) => addr,
    })
}

/// Every form the kernel disassembly showed (docs/insn-forms.md) decodes
/// and agrees with iced.
#[test]
fn forms_from_the_kernel_disassembly() {
    let forms: &[&[u8]] = &[
        &[0x8b, 0x07],
        &[0x66, 0x8b, 0x07],
        &[0x8a, 0x07],
        &[0x48, 0x8b, 0x07],
        &[0x89, 0x3e],
        &[0x66, 0x89, 0x3e],
        &[0x40, 0x88, 0x3e],
        &[0x48, 0x89, 0x3e],
        &[0x8b, 0x06],
        &[0x8b, 0x46, 0x04],
        &[0x89, 0x16],
        &[0x8b, 0x04, 0x8b],
        &[0x89, 0x04, 0x8b],
        &[0x66, 0x89, 0x04, 0x4b],
        &[0x0f, 0xb7, 0x04, 0x4b],
        &[0x0f, 0xb6, 0x03],
        &[0x8a, 0x45, 0x00],
        &[0x40, 0x88, 0x30],
        &[0x8a, 0x09],
        &[0x88, 0x01],
        &[0xf3, 0xa5],
        &[0x66, 0xa5],
        &[0xa4],
        &[0xf3, 0xa4],
        &[0xf3, 0xaa],
        &[0xf3, 0x48, 0xa5],
        &[0xf3, 0x48, 0xab],
        &[0x4c, 0x8b, 0x5c, 0x16, 0xf8],
        &[0x66, 0x44, 0x8b, 0x54, 0x16, 0xfe],
        &[0x44, 0x88, 0x0c, 0x17],
        &[0x4c, 0x0f, 0xb6, 0x46, 0x01],
        &[0x66, 0x44, 0x89, 0xa0, 0x0c, 0x05, 0x00, 0x00],
        &[0x89, 0x90, 0x04, 0x06, 0x00, 0x00],
        &[0x8a, 0x80, 0x1a, 0x04, 0x00, 0x00],
        &[0x88, 0x90, 0x00, 0x04, 0x00, 0x00],
        &[0x66, 0x8b, 0x88, 0x00, 0x05, 0x00, 0x00],
        &[0x44, 0x8b, 0x80, 0x00, 0x06, 0x00, 0x00],
        &[0xc7, 0x80, 0x80, 0x05, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00],
        &[0xc6, 0x80, 0x89, 0x05, 0x00, 0x00, 0x01],
        &[0x8b, 0x05, 0xfc, 0x9d, 0x6e, 0x01],
    ];
    for bytes in forms {
        let insn = decode(bytes).unwrap_or_else(|e| panic!("{bytes:02x?}: {e:?}"));
        assert_eq!(insn.len as usize, bytes.len(), "{bytes:02x?}");
        assert_eq!(Some(ours(&insn)), supported(bytes), "{bytes:02x?}");
    }
}

/// The length decoder used for instructions the emulator refuses: when it
/// claims a length for bytes iced-x86 decodes as a valid 64-bit
/// instruction, the lengths agree. (Bytes the CPU rejects as undefined
/// raise #UD before any memory access, so they never reach the trap
/// handler; their length does not matter.)
fn check_length(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Some(n) = pciem_core::insn::length(bytes) else {
        return Ok(());
    };
    let mut d = iced_x86::Decoder::new(64, bytes, iced_x86::DecoderOptions::NONE);
    let insn = d.decode();
    if insn.is_invalid() {
        return Ok(());
    }
    prop_assert_eq!(usize::from(n), insn.len(), "bytes {:02x?}", bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn length_agrees_with_iced_when_valid(bytes in prop::collection::vec(any::<u8>(), 0..=15)) {
        check_length(&bytes)?;
    }

    #[test]
    fn length_agrees_with_decode(bytes in form()) {
        if let Ok(insn) = decode(&bytes) {
            prop_assert_eq!(pciem_core::insn::length(&bytes), Some(insn.len));
        }
    }
}

#[test]
fn length_of_instructions_the_emulator_refuses() {
    // lock xadd %eax,(%rdi); btsl $0,(%rdi); addl $1,0x10(%rdi);
    // vmovdqu (%rdi),%ymm0
    let cases: &[(&[u8], u8)] = &[
        (&[0xf0, 0x0f, 0xc1, 0x07], 4),
        (&[0x0f, 0xba, 0x2f, 0x00], 4),
        (&[0x83, 0x47, 0x10, 0x01], 4),
        (&[0xc5, 0xfe, 0x6f, 0x07], 4),
    ];
    for (bytes, len) in cases {
        assert!(decode(bytes).is_err(), "{bytes:02x?} is emulated");
        assert_eq!(pciem_core::insn::length(bytes), Some(*len), "{bytes:02x?}");
    }
}
