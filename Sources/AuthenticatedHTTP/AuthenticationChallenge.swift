/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1): a scheme and its parameters.
///
/// Parsing is a plain function of the header's text, tested without I/O: it never traps, and
/// anything it cannot read ends the challenge it is in rather than inventing one.
public struct AuthenticationChallenge: Sendable, Hashable {
    /// The scheme, such as `Bearer`, as sent.
    public var scheme: String
    /// The parameters by lowercased name; quoted values are unquoted and unescaped.
    public var parameters: [String: String]
    /// A `token68` credential sent instead of parameters, if any.
    public var token68: String?

    /// Creates a challenge.
    public init(scheme: String, parameters: [String: String] = [:], token68: String? = nil) {
        self.scheme = scheme
        self.parameters = parameters
        self.token68 = token68
    }

    /// Whether the scheme is `name`, compared without case.
    public func hasScheme(_ name: String) -> Bool { scheme.lowercased() == name.lowercased() }

    /// The challenges of the `WWW-Authenticate` header values of one response, in order.
    public static func parse(_ headerValues: [String]) -> [AuthenticationChallenge] {
        headerValues.flatMap { parse($0) }
    }

    /// The challenges of one `WWW-Authenticate` value, in order.
    public static func parse(_ headerValue: String) -> [AuthenticationChallenge] {
        var scanner = ChallengeScanner(Array(headerValue.utf8))
        return scanner.challenges()
    }
}

/// Reads challenges from the bytes of a header value.
private struct ChallengeScanner {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func challenges() -> [AuthenticationChallenge] {
        var result: [AuthenticationChallenge] = []
        while true {
            skip(whereTrue: { $0 == UInt8(ascii: ",") || Self.isSpace($0) })
            guard index < bytes.count else { break }
            guard let scheme = token() else {
                skip(whereTrue: { $0 != UInt8(ascii: ",") })
                continue
            }
            var challenge = AuthenticationChallenge(scheme: scheme)
            let clean = readParameters(into: &challenge)
            result.append(challenge)
            // Whatever could not be read is skipped up to the next comma.
            if !clean { skip(whereTrue: { $0 != UInt8(ascii: ",") }) }
        }
        return result
    }

    /// Reads `token68` or `#auth-param` after a scheme; stops before the next challenge's scheme.
    /// - Returns: whether it stopped there or at the end (rather than at something it cannot read).
    private mutating func readParameters(into challenge: inout AuthenticationChallenge) -> Bool {
        skip(whereTrue: Self.isSpace)
        // A token68: its characters, then only "=" padding, then the end or a comma.
        let start = index
        if let run = run(whereTrue: Self.isToken68), !run.isEmpty {
            var end = index
            while end < bytes.count, bytes[end] == UInt8(ascii: "=") { end += 1 }
            var after = end
            while after < bytes.count, Self.isSpace(bytes[after]) { after += 1 }
            if after == bytes.count || bytes[after] == UInt8(ascii: ",") {
                // "name=" with no value is a token68 only when no parameter could be meant.
                challenge.token68 = String(decoding: bytes[start..<end], as: UTF8.self)
                index = after
                return true
            }
        }
        index = start
        while index < bytes.count {
            let mark = index
            skip(whereTrue: Self.isSpace)
            guard let name = token() else {
                index = mark
                skip(whereTrue: Self.isSpace)
                return index == bytes.count
            }
            skip(whereTrue: Self.isSpace)
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                // A token not followed by "=" is the next challenge's scheme.
                index = mark
                return true
            }
            index += 1
            skip(whereTrue: Self.isSpace)
            guard let value = quotedString() ?? token() else { return false }
            challenge.parameters[name.lowercased()] = value
            skip(whereTrue: Self.isSpace)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ",") else { return index == bytes.count }
            // A comma ends this parameter; what follows is another parameter or another challenge.
            index += 1
            skip(whereTrue: { $0 == UInt8(ascii: ",") || Self.isSpace($0) })
        }
        return true
    }

    private mutating func token() -> String? {
        guard let run = run(whereTrue: Self.isTokenCharacter), !run.isEmpty else { return nil }
        return String(decoding: run, as: UTF8.self)
    }

    private mutating func quotedString() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        var value: [UInt8] = []
        var position = index + 1
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\\"), position + 1 < bytes.count {
                value.append(bytes[position + 1])
                position += 2
            } else if byte == UInt8(ascii: "\"") {
                index = position + 1
                return String(decoding: value, as: UTF8.self)
            } else {
                value.append(byte)
                position += 1
            }
        }
        // An unterminated quote: nothing is read, and the rest of the value is skipped.
        index = bytes.count
        return nil
    }

    private mutating func run(whereTrue predicate: (UInt8) -> Bool) -> ArraySlice<UInt8>? {
        let start = index
        while index < bytes.count, predicate(bytes[index]) { index += 1 }
        return bytes[start..<index]
    }

    private mutating func skip(whereTrue predicate: (UInt8) -> Bool) {
        while index < bytes.count, predicate(bytes[index]) { index += 1 }
    }

    private static let tokenPunctuation = Set("!#$%&'*+-.^_`|~".utf8)
    private static let token68Punctuation = Set("-._~+/".utf8)

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// RFC 9110 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return tokenPunctuation.contains(byte)
        }
    }

    /// RFC 9110 `token68` characters, "=" padding excluded.
    private static func isToken68(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return token68Punctuation.contains(byte)
        }
    }
}
