import Foundation

/// Text the library puts in spans and log lines, cleared of what names an identity: the identity's
/// own id, user-assigned selectors in a query or form (`client_id=`, `object_id=`, `msi_res_id=`,
/// `mi_res_id=`, `principal_id=`), Azure resource ids (`/subscriptions/...`), and query strings.
/// Endpoints echo requests back in their errors (Entra's AADSTS700016 names the client id); a trace
/// or a log is read by more people than the code that asked for the token.
///
/// The error handed to the caller keeps them, so the caller can tell which identity failed.
enum TelemetryRedaction {
    static let placeholder = "<redacted>"
    static let selectorNames = ["client_id=", "object_id=", "msi_res_id=", "mi_res_id=", "principal_id="]

    /// `text` without identity ids, selectors, resource ids or query strings.
    static func redact(_ text: String, identity: ManagedIdentityID?) -> String {
        var result = text
        if let id = identity?.id, !id.isEmpty {
            // One pass, forward: the placeholder may itself contain the id's text.
            var redacted = ""
            var remaining = result[...]
            while let range = remaining.range(of: id, options: .caseInsensitive) {
                redacted += remaining[..<range.lowerBound]
                redacted += placeholder
                remaining = remaining[range.upperBound...]
            }
            result = redacted + remaining
        }
        for name in selectorNames {
            result = replacingValues(after: name, in: result, stoppingAt: " \t\n\"'&,;)")
        }
        result = replacingValues(after: "/subscriptions/", in: result, stoppingAt: " \t\n\"',;)", keepMarker: false)
        result = replacingValues(after: "?", in: result, stoppingAt: " \t\n\"',;)")
        return result
    }

    /// A copy of `error` fit for a span: a library error with its message redacted; any other error
    /// by its type alone, since its text is not ours to vouch for.
    static func forTelemetry(_ error: any Error, identity: ManagedIdentityID) -> any Error {
        if var error = error as? ManagedIdentityError {
            error.message = redact(error.message, identity: identity)
            return error
        }
        if error is CancellationError { return error }
        return UnnamedError(typeName: String(describing: type(of: error)))
    }

    /// Replaces what follows each `marker` up to one of `stops` with the placeholder. A marker with
    /// nothing after it (a question mark ending a sentence) is left alone.
    private static func replacingValues(after marker: String, in text: String, stoppingAt stops: String, keepMarker: Bool = true) -> String {
        guard text.contains(marker) else { return text }
        var result = ""
        var remaining = text[...]
        while let range = remaining.range(of: marker) {
            let valueEnd = remaining[range.upperBound...].firstIndex { stops.contains($0) } ?? remaining.endIndex
            result += remaining[..<range.lowerBound]
            if valueEnd == range.upperBound {
                result += remaining[range]
            } else {
                result += (keepMarker ? String(remaining[range]) : "") + placeholder
            }
            remaining = remaining[valueEnd...]
        }
        return result + remaining
    }

    /// An error shown by its type's name only.
    struct UnnamedError: Error, CustomStringConvertible {
        var typeName: String
        var description: String { "an error of type \(typeName)" }
    }
}
