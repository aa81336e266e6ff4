//! Each command's RESULT, STATUS, ERROR_CODE and interrupt, driven the way
//! the kernel driver drives the card.

mod common;

use common::{enabled_bus, OK};
use pciem_backend_mock::IrqKind;
use protopciem::demo::{Driver, DriverBus};
use protopciem::framebuffer::{FRAME_BYTES, STRIDE};
use protopciem::mock::{P2P_BASE, P2P_SIZE};
use protopciem::regs::{self, Command, ErrorCode};

#[test]
fn compute_commands_results_status_and_interrupt() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        let cases: [(Command, u32, u64); 7] = [
            (Command::Add, 0, 0),
            (Command::Add, 0xFFFF_FFFF, 0x1_FFFF_FFFE),
            (Command::Multiply, 3, 9),
            (Command::Multiply, 0xFFFF_FFFF, 0xFFFF_FFFE_0000_0001),
            (Command::Xor, 0, 0xFFFF_FFFF),
            (Command::Xor, 0xA5A5_0000, 0x5A5A_FFFF),
            (Command::Xor, 0xFFFF_FFFF, 0),
        ];
        for (i, (cmd, data, want)) in cases.into_iter().enumerate() {
            let mut d = Driver::new(&mut bus);
            d.bus().write_reg(regs::DATA, data).unwrap();
            let c = d.run_raw(cmd as u32).unwrap();
            assert_eq!(c.status, OK, "{cmd:?}");
            assert_eq!(c.error, ErrorCode::None.raw());
            assert_eq!(c.result, want, "{cmd:?}({data:#x})");
            assert_eq!(bus.harness().irq_count(IrqKind::Msi, 0), i as u64 + 1);
        }
        assert_eq!(
            bus.harness().irq_count(IrqKind::Msi, 0),
            7,
            "MSI vector 0 only"
        );
        assert_eq!(bus.stats().unwrap().commands, 7);
    });
}

#[test]
fn status_reads_busy_never_after_completion_and_clears_on_zero_write() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        bus.write_reg(regs::DATA, 1).unwrap();
        bus.write_reg(regs::CMD, Command::Add as u32).unwrap();
        assert_eq!(bus.read_reg(regs::STATUS).unwrap(), OK);
        assert_eq!(bus.read_reg(regs::CMD).unwrap(), 0);
        bus.write_reg(regs::STATUS, 0).unwrap();
        assert_eq!(bus.read_reg(regs::STATUS).unwrap(), 0);
    });
}

#[test]
fn process_buffer_complements_and_sums() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        let mut d = Driver::new(&mut bus);
        let input: Vec<u8> = (0..=255).collect();
        let src = d.upload(&input).unwrap();
        let dst = d.bus().alloc_dma(256).unwrap();
        d.set_dma(src, dst, 256).unwrap();
        assert_eq!(d.run_ok(Command::ProcessBuffer).unwrap(), 255 * 256 / 2);
        let mut out = [0u8; 256];
        d.bus().read_dma(dst, &mut out).unwrap();
        let want: Vec<u8> = (0..=255u8).rev().collect();
        assert_eq!(out.to_vec(), want);
        // In place (SRC = DST) works too, and the complement undoes itself.
        d.set_dma(dst, dst, 256).unwrap();
        assert_eq!(d.run_ok(Command::ProcessBuffer).unwrap(), 255 * 256 / 2);
        d.bus().read_dma(dst, &mut out).unwrap();
        assert_eq!(out.to_vec(), input);
    });
}

#[test]
fn dma_frame_lands_in_bar2() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        let mut d = Driver::new(&mut bus);
        let frame: Vec<u8> = (0..FRAME_BYTES).map(|i| (i % 251) as u8).collect();
        let src = d.upload(&frame).unwrap();
        d.set_dma(src, 0, FRAME_BYTES as u32).unwrap();
        assert_eq!(d.run_ok(Command::DmaFrame).unwrap(), FRAME_BYTES as u64);
        assert!(d.read_frame().unwrap() == frame);
    });
}

#[test]
fn execute_cmdbuf_counts_records() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        let mut d = Driver::new(&mut bus);
        let buf = protopciem::cmdbuf::CmdBufBuilder::new()
            .nop(8)
            .nop(11)
            .clear(protopciem::framebuffer::Rgb::new(1, 2, 3))
            .build();
        assert_eq!(d.submit(&buf).unwrap(), 3);
        let f = d.read_frame().unwrap();
        assert_eq!(&f[STRIDE * 100..STRIDE * 100 + 3], &[1, 2, 3]);
    });
}

#[test]
fn p2p_write_then_read_round_trips() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        let mut d = Driver::new(&mut bus);
        let data: Vec<u8> = (0..100u8).collect();
        let src = d.upload(&data).unwrap();
        let peer = P2P_BASE + P2P_SIZE - 100;
        d.set_dma(src, peer, 100).unwrap();
        assert_eq!(d.run_ok(Command::P2pWrite).unwrap(), 100);
        let dst = d.bus().alloc_dma(100).unwrap();
        d.set_dma(peer, dst, 100).unwrap();
        assert_eq!(d.run_ok(Command::P2pRead).unwrap(), 100);
        let mut back = vec![0; 100];
        d.bus().read_dma(dst, &mut back).unwrap();
        assert_eq!(back, data);
    });
}

#[test]
fn control_reset_clears_registers_frame_and_self_clears() {
    common::each_mode(|| {
        let mut bus = enabled_bus();
        let mut d = Driver::new(&mut bus);
        let buf = protopciem::cmdbuf::CmdBufBuilder::new()
            .clear(protopciem::framebuffer::Rgb::new(200, 100, 50))
            .build();
        d.submit(&buf).unwrap();
        d.compute(Command::Multiply, 7, 49).unwrap();
        d.reset().unwrap();
        for r in [regs::RESULT_LO, regs::DATA, regs::DMA_LEN, regs::ERROR_CODE] {
            assert_eq!(d.bus().read_reg(r).unwrap(), 0, "register {r:#x}");
        }
        assert!(d.read_frame().unwrap().iter().all(|&b| b == 0));
        assert_eq!(
            bus.harness().device().unwrap().framebuffer().pixel(5, 5),
            Some(Default::default())
        );
        assert_eq!(bus.stats().unwrap().resets, 2);
    });
}

#[test]
fn commands_need_enable() {
    common::each_mode(|| {
        let mut bus = common::bus();
        let mut d = Driver::new(&mut bus);
        common::assert_failed(
            d.run_raw(Command::Add as u32).unwrap(),
            ErrorCode::NotEnabled,
            0,
        );
        d.reset().unwrap();
        d.compute(Command::Add, 1, 2).unwrap();
    });
}
