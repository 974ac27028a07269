import Foundation

/// An absolute `http` or `https` URL read from an endpoint variable, split into the parts a
/// request is built from.
struct EndpointURL: Hashable, Sendable, CustomStringConvertible {
    var scheme: String
    var host: String
    var port: Int?
    var path: String
    /// Query parameters already in the variable's value; they are kept and sent first.
    var query: [QueryItem]

    /// Parses an absolute URL. Returns `nil` for anything that is not `http(s)://host[:port][/path][?query]`:
    /// no scheme (`127.0.0.1:41564/msi/token`, `localhost/token`), another scheme, no host, a bad port,
    /// user info, a fragment, whitespace or control characters.
    init?(parsing string: String) {
        guard !string.isEmpty, string.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            return nil
        }
        guard let schemeEnd = string.range(of: "://") else { return nil }
        let scheme = string[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        var rest = string[schemeEnd.upperBound...]
        if rest.contains("#") { return nil }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        guard !authority.isEmpty, !authority.contains("@") else { return nil }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterBracket = authority[authority.index(after: close)...]
            if !afterBracket.isEmpty {
                guard afterBracket.hasPrefix(":") else { return nil }
                portText = afterBracket.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
            if host.contains(":") { return nil }
        } else {
            host = authority
        }
        guard !host.isEmpty else { return nil }
        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCIIDigit),
                let value = Int(portText), (1...65535).contains(value)
            else { return nil }
            port = value
        }

        var path = "/"
        var query: [QueryItem] = []
        if let questionMark = rest.firstIndex(of: "?") {
            let pathPart = rest[..<questionMark]
            if !pathPart.isEmpty { path = String(pathPart) }
            guard let items = PercentEncoding.decodeQuery(rest[rest.index(after: questionMark)...]) else {
                return nil
            }
            query = items
        } else if !rest.isEmpty {
            path = String(rest)
        }
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = port
        self.path = path
        self.query = query
    }

    init(scheme: String, host: String, port: Int?, path: String, query: [QueryItem] = []) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.query = query
    }

    /// Scheme, host and port: what names the endpoint's server, safe to log.
    var origin: String {
        HTTPTransportRequest(method: "GET", scheme: scheme, host: host, port: port, path: path, query: [], headers: [], timeout: .zero)
            .origin
    }

    var description: String {
        var request = HTTPTransportRequest(
            method: "GET", scheme: scheme, host: host, port: port, path: path, query: query, headers: [],
            timeout: .zero
        )
        request.query = query
        return request.url
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
