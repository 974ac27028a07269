/// One finding of `managed-identity doctor`: what was checked, what was found and, for a problem,
/// the fix in one sentence. Findings are plain values made from facts by ``Diagnostics``, so every
/// decision is tested without a file, a socket or a clock.
package struct DiagnosticCheck: Sendable, Equatable, Encodable {
    package enum Verdict: String, Sendable, Equatable, Encodable {
        case ok, info, warning, problem
    }

    /// What was checked: `source`, `variables`, `probe`, `token file`, `arc keys`, `cache`, `token`.
    package var name: String
    package var verdict: Verdict
    /// What was found, naming variables and paths but never a secret's value.
    package var detail: String
    /// For a warning or a problem: what to do, in one sentence.
    package var fix: String?

    package init(_ name: String, _ verdict: Verdict, _ detail: String, fix: String? = nil) {
        self.name = name
        self.verdict = verdict
        self.detail = detail
        self.fix = fix
    }
}
