import Synchronization

/// A request's correlation id: UUID-shaped (version 4 layout), unique within the process and, from a
/// random seed, across processes; or the one the caller gave.
///
/// Foundation's `UUID()` reads the system's random source on every call (about 4 µs here); a request
/// needs an id, not cryptographic randomness, so ids come from a counter mixed with a random seed. The
/// text is made only when something reads it: a cache hit whose hooks ignore the id never pays for it.
struct CorrelationID: Sendable, CustomStringConvertible {
    private enum Storage: Sendable {
        case generated(UInt64)
        case given(String)
    }

    private let storage: Storage

    /// The id the caller gave.
    init(_ given: String) { storage = .given(given) }

    private init(count: UInt64) { storage = .generated(count) }

    /// A new id.
    static func next() -> CorrelationID {
        CorrelationID(count: counter.add(1, ordering: .relaxed).newValue)
    }

    /// The id's text; the same every time it is read.
    var string: String {
        switch storage {
        case .given(let text): text
        case .generated(let count): Self.format(count)
        }
    }

    var description: String { string }

    private static let seed: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    private static let counter = Atomic<UInt64>(0)

    private static func format(_ count: UInt64) -> String {
        let high = mix(seed &+ count)
        let low = mix(high ^ count)
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            for nibbleIndex in 0..<32 {
                if nibbleIndex == 8 || nibbleIndex == 12 || nibbleIndex == 16 || nibbleIndex == 20 {
                    buffer[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = nibbleIndex < 16 ? high : low
                var nibble = UInt8(truncatingIfNeeded: word >> (60 - 4 * UInt64(nibbleIndex % 16))) & 0x0F
                if nibbleIndex == 12 { nibble = 4 }  // version 4
                if nibbleIndex == 16 { nibble = nibble & 0x3 | 0x8 }  // RFC 4122 variant
                buffer[position] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                position += 1
            }
            return position
        }
    }

    /// SplitMix64's finaliser: spreads consecutive counters over the whole range.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
