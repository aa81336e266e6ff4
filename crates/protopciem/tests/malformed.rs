//! Every kind of malformed input ends in STATUS = DONE | ERROR with an
//! ERROR_CODE, an interrupt, nothing drawn, and a card that still works.

mod common;

use common::{assert_failed, assert_still_usable, enabled_bus};
use pciem_backend_mock::IrqKind;
use protopciem::cmdbuf::CmdBufBuilder;
use protopciem::demo::{Driver, DriverBus};
use protopciem::framebuffer::{Rgb, FRAME_BYTES};
use protopciem::mock::MockBus;
use protopciem::regs::{self, Command, ErrorCode, MAX_DMA_LEN};

/// A bus address in the mock's DMA space (the checks fire before any access).
const DMA_BASE: u64 = 0x1_0000_0000;

const RED: Rgb = Rgb::new(255, 0, 0);

/// Draw something recognisable first so "nothing drawn" can be checked.
fn prepared() -> (MockBus, Vec<u8>) {
    let mut bus = enabled_bus();
    let mut d = Driver::new(&mut bus);
    d.submit(
        &CmdBufBuilder::new()
            .clear(Rgb::new(9, 8, 7))
            .line(0, 0, 50, 50, RED)
            .build(),
    )
    .unwrap();
    let frame = d.read_frame().unwrap();
    (bus, frame)
}

/// Submit `buf` as a command buffer; check the error, that the interrupt
/// came, and that the card is still usable with the frame untouched.
fn bad_cmdbuf(buf: &[u8], code: ErrorCode, offset: u64) {
    let (mut bus, frame) = prepared();
    let irqs = bus.harness().irq_count(IrqKind::Msi, 0);
    let mut d = Driver::new(&mut bus);
    let src = d.upload(buf).unwrap();
    d.set_dma(src, 0, buf.len() as u32).unwrap();
    assert_failed(
        d.run_raw(Command::ExecuteCmdbuf as u32).unwrap(),
        code,
        offset,
    );
    assert_still_usable(&mut d, &frame);
    assert_eq!(bus.harness().irq_count(IrqKind::Msi, 0), irqs + 2);
    assert_eq!(bus.stats().unwrap().errors, 1);
}

#[test]
fn truncated_record_header() {
    common::each_mode(|| {
        let buf = CmdBufBuilder::new().nop(8).raw(&[2, 0, 0, 0, 20]).build();
        bad_cmdbuf(&buf, ErrorCode::CmdbufTruncated, 8);
    });
}

#[test]
fn truncated_record_body() {
    common::each_mode(|| {
        let mut buf = CmdBufBuilder::new()
            .clear(RED)
            .line(1, 1, 9, 9, RED)
            .build();
        buf.truncate(buf.len() - 1);
        bad_cmdbuf(&buf, ErrorCode::CmdbufTruncated, 12);
    });
}

#[test]
fn record_length_past_the_end() {
    common::each_mode(|| {
        let buf = CmdBufBuilder::new()
            .clear(RED)
            .raw(&[0, 0, 0, 0, 0x00, 0x01, 0, 0])
            .build();
        bad_cmdbuf(&buf, ErrorCode::CmdbufTruncated, 12);
        let huge = CmdBufBuilder::new()
            .raw(&[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
            .build();
        bad_cmdbuf(&huge, ErrorCode::CmdbufTruncated, 0);
    });
}

#[test]
fn zero_length_record() {
    common::each_mode(|| {
        // A zero length would loop forever if accepted; it is refused, and the
        // CLEAR before it is not drawn either (the buffer is checked first).
        let buf = CmdBufBuilder::new().clear(RED).raw(&[0; 8]).build();
        bad_cmdbuf(&buf, ErrorCode::CmdbufBadLength, 12);
    });
}

#[test]
fn record_shorter_than_its_header() {
    common::each_mode(|| {
        let buf = CmdBufBuilder::new()
            .raw(&[1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0])
            .build();
        bad_cmdbuf(&buf, ErrorCode::CmdbufBadLength, 0);
    });
}

#[test]
fn wrong_length_for_the_opcode() {
    common::each_mode(|| {
        let mut line = CmdBufBuilder::new()
            .line(0, 0, 5, 5, RED)
            .raw(&[0; 4])
            .build();
        line[4] = 24;
        bad_cmdbuf(&line, ErrorCode::CmdbufBadLength, 0);
        let mut blit = CmdBufBuilder::new()
            .nop(8)
            .blit(0, 0, 2, 2, &[1; 12])
            .unwrap()
            .build();
        blit[8 + 14] = 3; // h = 3, but only 2 rows of pixels
        bad_cmdbuf(&blit, ErrorCode::CmdbufBadLength, 8);
    });
}

#[test]
fn unknown_opcode() {
    common::each_mode(|| {
        let buf = CmdBufBuilder::new()
            .clear(RED)
            .raw(&[0x34, 0x12, 0, 0, 8, 0, 0, 0])
            .build();
        bad_cmdbuf(&buf, ErrorCode::CmdbufUnknownOpcode, 12);
    });
}

fn bad_dma(cmd: Command, src: u64, dst: u64, len: u32, code: ErrorCode, detail: u64) {
    let (mut bus, frame) = prepared();
    let mut d = Driver::new(&mut bus);
    d.set_dma(src, dst, len).unwrap();
    assert_failed(d.run_raw(cmd as u32).unwrap(), code, detail);
    assert_still_usable(&mut d, &frame);
}

#[test]
fn zero_length_dma() {
    common::each_mode(|| {
        for cmd in [
            Command::ProcessBuffer,
            Command::ExecuteCmdbuf,
            Command::P2pRead,
            Command::P2pWrite,
        ] {
            bad_dma(cmd, DMA_BASE, DMA_BASE, 0, ErrorCode::ZeroLength, 0);
        }
    });
}

#[test]
fn dma_length_over_the_limit() {
    common::each_mode(|| {
        for cmd in [
            Command::ProcessBuffer,
            Command::ExecuteCmdbuf,
            Command::P2pRead,
            Command::P2pWrite,
        ] {
            for len in [MAX_DMA_LEN + 1, u32::MAX] {
                bad_dma(cmd, DMA_BASE, DMA_BASE, len, ErrorCode::TooLong, len.into());
            }
        }
    });
}

#[test]
fn frame_of_the_wrong_size() {
    common::each_mode(|| {
        for len in [
            0,
            1,
            FRAME_BYTES as u32 - 1,
            FRAME_BYTES as u32 + 3,
            u32::MAX,
        ] {
            bad_dma(
                Command::DmaFrame,
                DMA_BASE,
                0,
                len,
                ErrorCode::FrameSize,
                len.into(),
            );
        }
    });
}

#[test]
fn unmapped_bus_addresses() {
    common::each_mode(|| {
        let nowhere = 0xdead_beef_0000;
        bad_dma(
            Command::ExecuteCmdbuf,
            nowhere,
            0,
            64,
            ErrorCode::DmaFault,
            nowhere,
        );
        bad_dma(
            Command::DmaFrame,
            nowhere,
            0,
            FRAME_BYTES as u32,
            ErrorCode::DmaFault,
            nowhere,
        );
        bad_dma(
            Command::ProcessBuffer,
            nowhere,
            0,
            64,
            ErrorCode::DmaFault,
            nowhere,
        );
        bad_dma(
            Command::P2pWrite,
            nowhere,
            0,
            64,
            ErrorCode::DmaFault,
            nowhere,
        );

        // A readable source but an unmapped destination.
        let (mut bus, frame) = prepared();
        let mut d = Driver::new(&mut bus);
        let src = d.upload(&[7; 64]).unwrap();
        d.set_dma(src, nowhere, 64).unwrap();
        assert_failed(
            d.run_raw(Command::ProcessBuffer as u32).unwrap(),
            ErrorCode::DmaFault,
            nowhere,
        );
        // A buffer that starts mapped and runs off the end of what is mapped.
        d.set_dma(src, 0, 8192).unwrap();
        assert_failed(
            d.run_raw(Command::ExecuteCmdbuf as u32).unwrap(),
            ErrorCode::DmaFault,
            src,
        );
        assert_still_usable(&mut d, &frame);
    });
}

#[test]
fn p2p_outside_the_permitted_window() {
    common::each_mode(|| {
        let (mut bus, frame) = prepared();
        let mut d = Driver::new(&mut bus);
        let buf = d.upload(&[1; 64]).unwrap();
        d.set_dma(0x1234_0000, buf, 64).unwrap();
        assert_failed(
            d.run_raw(Command::P2pRead as u32).unwrap(),
            ErrorCode::P2pDenied,
            0x1234_0000,
        );
        d.set_dma(buf, 0x1234_0000, 64).unwrap();
        assert_failed(
            d.run_raw(Command::P2pWrite as u32).unwrap(),
            ErrorCode::P2pDenied,
            0x1234_0000,
        );
        assert_still_usable(&mut d, &frame);
    });
}

#[test]
fn unknown_commands() {
    common::each_mode(|| {
        let (mut bus, frame) = prepared();
        let mut d = Driver::new(&mut bus);
        for raw in [9, 0x100, u32::MAX] {
            assert_failed(
                d.run_raw(raw).unwrap(),
                ErrorCode::UnknownCommand,
                raw.into(),
            );
        }
        assert_still_usable(&mut d, &frame);
    });
}

#[test]
fn error_code_is_cleared_by_the_next_good_command() {
    common::each_mode(|| {
        let (mut bus, _) = prepared();
        let mut d = Driver::new(&mut bus);
        d.run_raw(42).unwrap();
        assert_eq!(d.bus().read_reg(regs::ERROR_CODE).unwrap(), 1);
        d.compute(Command::Xor, 0, 0xFFFF_FFFF).unwrap();
        assert_eq!(d.bus().read_reg(regs::ERROR_CODE).unwrap(), 0);
    });
}
