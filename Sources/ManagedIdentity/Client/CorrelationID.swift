import Synchronization

/// Makes request correlation ids: UUID-shaped (version 4 layout), unique within the process and, from
/// a random seed, across processes.
///
/// Foundation's `UUID()` reads the system's random source on every call (about 4 µs here); a request
/// needs an id, not cryptographic randomness, so ids come from a counter mixed with a random seed.
enum CorrelationID {
    private static let seed: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    private static let counter = Atomic<UInt64>(0)

    static func make() -> String {
        let count = counter.add(1, ordering: .relaxed).newValue
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
