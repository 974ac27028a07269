/// Retry delays as the client sleeps them: each between MSAL's delay and half as much again (the
/// jitter that keeps callers that failed together from returning together).
public enum RetryDelays {
    /// Whether `slept` are `expected`, one for one, each jittered within [expected, 1.5 × expected].
    public static func areJittered(_ slept: [Duration], around expected: [Duration]) -> Bool {
        slept.count == expected.count
            && zip(slept, expected).allSatisfy { slept, base in slept >= base && slept <= base + base / 2 }
    }
}
