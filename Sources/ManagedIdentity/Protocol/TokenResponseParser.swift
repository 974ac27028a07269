/// The fields of an endpoint's success body that this library reads.
struct TokenResponseFields: Sendable {
    var accessToken: String?
    var expiresOn: ExpiryParser.Value?
    var expiresIn: ExpiryParser.Value?
    var refreshIn: ExpiryParser.Value?
    var tokenType: String?
    var resource: String?
    var clientID: String?
    var objectID: String?
    var msiResourceID: String?
    var miResourceID: String?
}

/// A token as an endpoint issued it.
struct IssuedToken: Sendable {
    var accessToken: String
    var tokenType: String
    /// Seconds since 1970.
    var expiresOn: Double
    /// Seconds since 1970; `nil` when the token need not be refreshed before it nears expiry.
    var refreshOn: Double?
}

/// Turns a 200 response into a token, or into the error MSAL.NET gives for it.
enum TokenResponseParser {
    /// Tokens living longer than this (strictly) are refreshed at half their lifetime (MSAL.NET).
    static let halfLifeThreshold: Int64 = 7_200

    static func fields(from body: [UInt8], source: ManagedIdentitySource) throws(ManagedIdentityError)
        -> TokenResponseFields
    {
        guard !body.isEmpty else { throw missingFields(source) }
        guard let object = JSONValue.parse(body) else {
            throw ManagedIdentityError(
                code: .responseParseFailure,
                message: "[Managed Identity] MSI returned 200 OK, but the response could not be parsed. "
                    + "The endpoint's body is not JSON.",
                source: source, statusCode: 200
            )
        }
        guard let json = object.objectValue else { throw missingFields(source) }
        return TokenResponseFields(
            accessToken: json["access_token"]?.stringValue,
            expiresOn: json["expires_on"]?.expiryValue,
            expiresIn: json["expires_in"]?.expiryValue,
            refreshIn: json["refresh_in"]?.expiryValue,
            tokenType: json["token_type"]?.stringValue,
            resource: json["resource"]?.stringValue,
            clientID: json["client_id"]?.textValue,
            objectID: json["object_id"]?.textValue,
            msiResourceID: json["msi_res_id"]?.textValue,
            miResourceID: json["mi_res_id"]?.textValue
        )
    }

    /// Validates the fields and computes expiry and refresh times against `now` (seconds since 1970).
    static func token(from fields: TokenResponseFields, now: Double, source: ManagedIdentitySource)
        throws(ManagedIdentityError) -> IssuedToken
    {
        guard let accessToken = fields.accessToken, !accessToken.isEmpty else { throw missingFields(source) }
        let expiresOn: Double
        if let value = fields.expiresOn {
            guard let parsed = ExpiryParser.expiresOn(value, now: now) else {
                throw ManagedIdentityError(
                    code: .invalidTimestampFormat,
                    message: "Failed to parse date-time stamp from identity provider. Invalid format: "
                        + "\(describe(value)). Expected epoch seconds, ISO 8601, or M/d/yyyy h:mm:ss [AM|PM] [+hh:mm].",
                    source: source, statusCode: 200
                )
            }
            expiresOn = parsed
        } else if let value = fields.expiresIn {
            guard let seconds = ExpiryParser.seconds(value) else {
                throw ManagedIdentityError(
                    code: .invalidTimestampFormat,
                    message: "Failed to parse expires_in from identity provider. Invalid format: \(describe(value)).",
                    source: source, statusCode: 200
                )
            }
            expiresOn = now + Double(seconds)
        } else {
            throw missingFields(source)
        }
        let lifetime = Int64((expiresOn - now).rounded(.down))
        guard lifetime > 0 else {
            throw ManagedIdentityError(
                code: .invalidTokenProviderResponseValue,
                message: "The following token provider result value is invalid: ExpiresOn. The token the "
                    + "\(source.msalName) endpoint returned has already expired; check the host's clock.",
                source: source, statusCode: 200
            )
        }
        var refreshOn: Double?
        if let value = fields.refreshIn, let seconds = ExpiryParser.seconds(value), seconds > 0, seconds < lifetime {
            refreshOn = now + Double(seconds)
        } else if lifetime > halfLifeThreshold {
            refreshOn = now + Double(lifetime / 2)
        }
        return IssuedToken(
            accessToken: accessToken,
            tokenType: fields.tokenType.flatMap { $0.isEmpty ? nil : $0 } ?? "Bearer",
            expiresOn: expiresOn,
            refreshOn: refreshOn
        )
    }

    private static func describe(_ value: ExpiryParser.Value) -> String {
        switch value {
        case .number(let number): return String(number)
        case .string(let string): return SourceResolver.quotedForMessage(string)
        }
    }

    private static func missingFields(_ source: ManagedIdentitySource) -> ManagedIdentityError {
        .requestFailed(
            "Invalid response, the authentication response received did not contain the expected fields.",
            source: source, statusCode: 200)
    }
}
