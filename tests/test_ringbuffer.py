import threading

import numpy as np

from ser_live.ringbuffer import RingBuffer


def test_wraparound_preserves_order():
    ring = RingBuffer(100)
    source = np.arange(1000, dtype=np.float32)
    out, pos = [], 0
    for size in [30, 45, 70, 1, 99, 33, 60] * 5:
        block = source[pos : pos + size]
        if block.size == 0:
            break
        if ring.write(block):
            pos += block.size
        out.append(ring.read(37))
        out.append(ring.read(37))
    out.append(ring.read(1000))
    got = np.concatenate(out)
    np.testing.assert_array_equal(got, source[: got.size])
    assert got.size == pos
    assert ring.dropped_blocks == 0


def test_overflow_drops_whole_block_and_counts():
    ring = RingBuffer(100)
    assert ring.write(np.ones(80, np.float32))
    assert not ring.write(np.full(30, 2.0, np.float32))  # does not fit: dropped, not partially written
    assert ring.dropped_blocks == 1 and ring.dropped_samples == 30
    assert ring.write(np.full(20, 3.0, np.float32))  # exactly fills it
    got = ring.read(1000)
    np.testing.assert_array_equal(got, np.r_[np.ones(80), np.full(20, 3.0)])
    assert ring.available == 0 and ring.free == 100


def test_two_channel_block_uses_first_channel():
    ring = RingBuffer(10)
    ring.write(np.array([[1, 9], [2, 9], [3, 9]], np.float32))
    np.testing.assert_array_equal(ring.read(10), [1, 2, 3])


def test_concurrent_producer_consumer_loses_nothing():
    ring = RingBuffer(256)
    n_blocks, size = 2000, 48
    received = []

    def produce():
        for i in range(n_blocks):
            block = np.arange(i * size, (i + 1) * size, dtype=np.float32)
            while not ring.write(block):  # the test retries; a real callback would count the drop
                pass

    t = threading.Thread(target=produce)
    t.start()
    total = 0
    while total < n_blocks * size:
        chunk = ring.read(100, timeout=0.5)
        received.append(chunk)
        total += chunk.size
    t.join()
    got = np.concatenate(received)
    np.testing.assert_array_equal(got, np.arange(n_blocks * size, dtype=np.float32))


def test_read_waits_for_data_with_timeout():
    ring = RingBuffer(10)
    assert ring.read(5, timeout=0.01).size == 0
    threading.Timer(0.05, lambda: ring.write(np.ones(4, np.float32))).start()
    assert ring.read(5, timeout=2.0).size == 4


def test_skip_discards_unread_samples_only():
    ring = RingBuffer(100)
    ring.write(np.arange(60, dtype=np.float32))
    assert ring.skip(25) == 25 and ring.available == 35
    assert ring.skip(1000) == 35 and ring.available == 0
    ring.write(np.array([7.0], np.float32))
    np.testing.assert_array_equal(ring.read(10), [7.0])
