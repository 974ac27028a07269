/// What ``TokenCacheConformance/run(interleavings:)`` found: the properties it checked, and those it
/// could not check for this backend, with why. A backend conforms when `run` returns; read
/// ``notChecked`` before shipping it, since what was not checked was not proven either.
public struct ConformanceVerdict: Sendable, CustomStringConvertible {
    /// The properties checked, each of which held.
    public var checked: [String]
    /// The properties not checked, with the reason (a backend declared for one process, a backend
    /// that cannot list or remove tokens).
    public var notChecked: [(property: String, reason: String)]

    /// Creates a verdict.
    public init(checked: [String], notChecked: [(property: String, reason: String)]) {
        self.checked = checked
        self.notChecked = notChecked
    }

    /// "conforms: N properties checked", then a line per property not checked.
    public var description: String {
        (["conforms: \(checked.count) properties checked"] + notChecked.map { "not checked: \($0.property): \($0.reason)" })
            .joined(separator: "\n")
    }
}
