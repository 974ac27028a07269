/// Sends one HTTP request to a managed identity endpoint and returns its response.
///
/// The client builds every request itself (URL, query, headers, body) and hands it to a transport;
/// the default is ``AsyncHTTPClientTransport``. Implement this protocol to route requests through
/// your own HTTP stack, or to record them in tests.
///
/// A transport must:
/// - send the request exactly as given, and follow no redirect (the secret headers must never reach
///   another host);
/// - give up after ``HTTPTransportRequest/timeout`` and throw ``HTTPTransportError`` with
///   ``HTTPTransportError/Kind/timeout``;
/// - when ``HTTPTransportRequest/serverCertificatePin`` is set, finish the TLS handshake and check
///   that the SHA-1 of the server's leaf certificate equals the pin before writing any byte of the
///   request, and throw ``HTTPTransportError/Kind/certificatePinMismatch`` otherwise;
/// - when ``HTTPTransportRequest/trustedCertificatesPEM`` is set, verify the server against those
///   certificates only, instead of the system's trust roots (never by turning verification off).
public protocol HTTPTransport: Sendable {
    /// Sends the request and returns the response, whatever its status.
    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse

    /// Whether requests through this transport wait for the endpoint's ``AdmissionLimits`` (true by
    /// default: a transport that reaches a real endpoint must keep within what it accepts). A test
    /// double with no endpoint behind it answers `false`, so tests are not paced at IMDS's 20 per
    /// second; limits set in ``ManagedIdentityClient/Configuration/admissionLimits`` apply regardless.
    var isBoundByEndpointLimits: Bool { get }
}

extension HTTPTransport {
    /// Requests wait for the endpoint's limits.
    public var isBoundByEndpointLimits: Bool { true }
}

/// One HTTP header.
public struct HTTPHeader: Hashable, Sendable {
    /// The header name.
    public var name: String
    /// The value; may be a secret.
    public var value: String

    /// Creates a header.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One query parameter, not yet percent-encoded.
public struct QueryItem: Hashable, Sendable {
    /// The parameter name.
    public var name: String
    /// The decoded value.
    public var value: String

    /// Creates a parameter.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A request to a managed identity endpoint.
public struct HTTPTransportRequest: Sendable {
    /// `GET` or `POST`.
    public var method: String
    /// `http` or `https`.
    public var scheme: String
    /// The host name or address, without brackets for IPv6.
    public var host: String
    /// The port, or `nil` for the scheme's default.
    public var port: Int?
    /// The path, starting with `/`.
    public var path: String
    /// The query parameters, in the order they are sent.
    public var query: [QueryItem]
    /// The headers, in the order they are sent. Values may be secrets: never log them.
    public var headers: [HTTPHeader]
    /// The body, for the form POSTs of Cloud Shell and workload identity. It may hold a secret (the
    /// federated assertion): never log it.
    public var body: [UInt8]?
    /// The SHA-1 the server certificate must have (Service Fabric), checked before the request is sent.
    public var serverCertificatePin: [UInt8]?
    /// PEM certificates that are the only trust roots for the server's certificate, instead of the
    /// system's: workload identity against an authority with a private CA (the emulator's).
    public var trustedCertificatesPEM: [UInt8]?
    /// How long the transport may take for the whole exchange.
    public var timeout: Duration

    /// Creates a request.
    public init(
        method: String,
        scheme: String,
        host: String,
        port: Int?,
        path: String,
        query: [QueryItem],
        headers: [HTTPHeader],
        body: [UInt8]? = nil,
        serverCertificatePin: [UInt8]? = nil,
        trustedCertificatesPEM: [UInt8]? = nil,
        timeout: Duration
    ) {
        self.method = method
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.serverCertificatePin = serverCertificatePin
        self.trustedCertificatesPEM = trustedCertificatesPEM
        self.timeout = timeout
    }

    /// The full URL, with the query percent-encoded.
    public var url: String {
        var url = origin + path
        if !query.isEmpty {
            url += "?" + query.map { PercentEncoding.encode($0.name) + "=" + PercentEncoding.encode($0.value) }
                .joined(separator: "&")
        }
        return url
    }

    /// The URL without path or query, safe to log: it never holds a secret or a resource name.
    public var origin: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        if let port { return "\(scheme)://\(hostPart):\(port)" }
        return "\(scheme)://\(hostPart)"
    }

    /// The value of a header, matched without regard to case.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The value of a query parameter.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }
}

/// An endpoint's response.
public struct HTTPTransportResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// The headers.
    public var headers: [HTTPHeader]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of a header, matched without regard to case.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Why a transport could not get a response.
public struct HTTPTransportError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure it was; the client retries timeouts and reports the rest at once.
    public var kind: Kind
    /// What happened, without the request's headers or body.
    public var message: String

    /// Creates an error.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// The kinds of transport failure.
    public enum Kind: Sendable, Hashable {
        /// No connection could be made, or it broke before a response arrived.
        case connectionFailed
        /// The request took longer than its timeout.
        case timeout
        /// The server's certificate did not match the pinned thumbprint; nothing was sent.
        case certificatePinMismatch
        /// The transport refused the request (for example a test transport that only allows loopback).
        case refused
        /// The calling task was cancelled.
        case cancelled
    }
}

/// Percent-encoding of query names and values: everything but RFC 3986's unreserved characters.
enum PercentEncoding {
    static func encode(_ string: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                encoded.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return encoded
    }

    /// Decodes `%XX` escapes and, in form bodies, `+` as a space. Returns `nil` for a malformed escape.
    static func decode(_ string: Substring, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count)
        var iterator = string.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Hex.nibble), let low = iterator.next().flatMap(Hex.nibble)
                else { return nil }
                bytes.append(high << 4 | low)
            } else if plusIsSpace && byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Splits `a=1&b=2` into decoded items; `nil` when an escape is malformed.
    static func decodeQuery(_ query: Substring, plusIsSpace: Bool = false) -> [QueryItem]? {
        var items: [QueryItem] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0], plusIsSpace: plusIsSpace),
                let value = decode(parts.count > 1 ? parts[1] : "", plusIsSpace: plusIsSpace)
            else { return nil }
            items.append(QueryItem(name: name, value: value))
        }
        return items
    }
}
