//! Submission and completion queues as the controller tracks them: ring
//! positions, phase, interrupt routing. The entries live in host memory
//! (physically contiguous: CAP.CQR is set).

/// A submission queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmissionQueue {
    /// Bus address of entry 0.
    pub base: u64,
    /// Entries.
    pub size: u16,
    /// Next entry the controller fetches.
    pub head: u16,
    /// Tail the host last wrote to the doorbell.
    pub tail: u16,
    /// The completion queue its commands complete on.
    pub cqid: u16,
}

impl SubmissionQueue {
    /// Whether every submitted command was fetched.
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Commands submitted and not yet fetched, up to the end of the ring
    /// (one contiguous run in host memory).
    pub fn contiguous_pending(&self) -> u16 {
        if self.tail >= self.head {
            self.tail - self.head
        } else {
            self.size - self.head
        }
    }

    /// Move the head past one fetched command.
    pub fn advance(&mut self) {
        self.head = if self.head + 1 >= self.size {
            0
        } else {
            self.head + 1
        };
    }
}

/// A completion queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletionQueue {
    /// Bus address of entry 0.
    pub base: u64,
    /// Entries.
    pub size: u16,
    /// Head the host last wrote to the doorbell (entries it consumed).
    pub head: u16,
    /// Next entry the controller writes.
    pub tail: u16,
    /// Phase tag of the entries written in this pass.
    pub phase: bool,
    /// Interrupts enabled.
    pub ien: bool,
    /// Interrupt vector.
    pub iv: u16,
    /// Entries were posted since the last interrupt.
    pub irq_due: bool,
}

impl CompletionQueue {
    /// A queue at its initial state (phase 1).
    pub fn new(base: u64, size: u16, ien: bool, iv: u16) -> Self {
        CompletionQueue {
            base,
            size,
            head: 0,
            tail: 0,
            phase: true,
            ien,
            iv,
            irq_due: false,
        }
    }

    /// Entries the controller may still post before the queue is full
    /// (a full queue keeps one slot empty).
    pub fn free(&self) -> u16 {
        let used = if self.tail >= self.head {
            self.tail - self.head
        } else {
            self.size - self.head + self.tail
        };
        self.size - 1 - used
    }

    /// Whether the host has entries it has not consumed.
    pub fn has_unconsumed(&self) -> bool {
        self.head != self.tail
    }

    /// Move the tail past one posted entry, flipping the phase on wrap.
    pub fn advance(&mut self) {
        self.tail += 1;
        if self.tail >= self.size {
            self.tail = 0;
            self.phase = !self.phase;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_wrap() {
        let mut sq = SubmissionQueue {
            base: 0,
            size: 4,
            head: 3,
            tail: 1,
            cqid: 1,
        };
        assert_eq!(sq.contiguous_pending(), 1);
        sq.advance();
        assert_eq!((sq.head, sq.contiguous_pending()), (0, 1));
        sq.advance();
        assert!(sq.is_empty());

        let mut cq = CompletionQueue::new(0, 4, true, 0);
        assert_eq!(cq.free(), 3);
        for _ in 0..3 {
            cq.advance();
        }
        assert_eq!((cq.free(), cq.tail, cq.phase), (0, 3, true));
        cq.head = 2;
        assert_eq!(cq.free(), 2);
        cq.advance();
        assert_eq!((cq.tail, cq.phase), (0, false));
        assert_eq!(cq.free(), 1);
    }
}
