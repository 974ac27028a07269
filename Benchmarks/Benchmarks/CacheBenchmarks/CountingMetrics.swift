import CoreMetrics
import Synchronization

/// A metrics backend that counts, as the simplest real backend would: every handler is an atomic
/// add. The hit path's cost with metrics on is measured against it.
final class CountingMetrics: MetricsFactory {
    final class Handler: CounterHandler, FloatingPointCounterHandler, RecorderHandler, TimerHandler, MeterHandler {
        let count = Atomic<Int64>(0)
        let bits = Atomic<UInt64>(0)
        func increment(by amount: Int64) { count.add(amount, ordering: .relaxed) }
        func increment(by amount: Double) { bits.store(amount.bitPattern, ordering: .relaxed) }
        func reset() { count.store(0, ordering: .relaxed) }
        func record(_ value: Int64) { count.add(1, ordering: .relaxed) }
        func record(_ value: Double) {
            count.add(1, ordering: .relaxed)
            bits.store(value.bitPattern, ordering: .relaxed)
        }
        func recordNanoseconds(_ duration: Int64) { count.add(1, ordering: .relaxed) }
        func set(_ value: Int64) { count.store(value, ordering: .relaxed) }
        func set(_ value: Double) { bits.store(value.bitPattern, ordering: .relaxed) }
        func decrement(by amount: Int64) { count.add(-amount, ordering: .relaxed) }
        func decrement(by amount: Double) {}
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { Handler() }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler { Handler() }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { Handler() }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { Handler() }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { Handler() }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
}
