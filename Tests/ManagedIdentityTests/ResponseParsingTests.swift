import Foundation
import Testing

@testable import ManagedIdentity

/// TV-11, TV-12 and TV-13: success bodies, expiry formats and refresh times.
struct ResponseParsingTests {
    /// 2026-01-01T00:00:00Z; the dates of TV-12 are absolute, so "now" only matters for relative values.
    let now = 1_767_225_600.0

    func parse(_ body: String, source: ManagedIdentitySource = .imds) throws -> IssuedToken {
        let fields = try TokenResponseParser.fields(from: Array(body.utf8), source: source)
        return try TokenResponseParser.token(from: fields, now: now, source: source)
    }

    // TV-12, every row, as MSAL.NET (en-US) reads it.
    @Test(arguments: [
        ("1697490590", 1_697_490_590.0),
        ("3600", 1_767_225_600.0 + 3600),
        ("2024-10-18T19:51:37.0000000+00:00", 1_729_281_097.0),
        ("06/20/2019 02:57:58 +00:00", 1_560_999_478.0),
        ("1/16/2020 5:24:12 AM +00:00", 1_579_152_252.0),
        ("11/26/2026 5:34:16 PM +00:00", 1_795_714_456.0),
        ("1/1/1970 12:0:12 PM +00:00", 43_212.0),
        ("1/1/1970 12:0:12 AM +00:00", 12.0),
        ("1795714456", 1_795_714_456.0),
    ])
    func expiresOnFormats(input: String, epoch: Double) {
        #expect(ExpiryParser.expiresOn(.string(input), now: now) == epoch)
    }

    @Test func expiresOnAsJSONNumber() {
        #expect(ExpiryParser.expiresOn(.number(1_795_714_456), now: now) == 1_795_714_456)
        #expect(ExpiryParser.expiresOn(.number(3600), now: now) == now + 3600)
    }

    @Test(arguments: [
        ("2026-11-26T17:34:16Z", 1_795_714_456.0),
        ("2026-11-26T19:34:16+02:00", 1_795_714_456.0),
        ("2026-11-26 17:34:16", 1_795_714_456.0),
        ("2026-11-26T12:34:16.5-0500", 1_795_714_456.5),
        ("11/26/2026 17:34:16", 1_795_714_456.0),
        ("11/26/2026 5:34:16 pm", 1_795_714_456.0),
        ("11/26/2026 7:34:16 PM +02:00", 1_795_714_456.0),
    ])
    func moreDateShapes(input: String, epoch: Double) {
        #expect(ExpiryParser.expiresOn(.string(input), now: now) == epoch)
    }

    @Test(arguments: [
        "invalid-date-format", "13/01/2026 1:00:00", "2/30/2026 1:00:00", "2026-11-26T25:00:00Z", "11/26/2026 13:00:00 PM",
        "2026-11-26T17:34:16+24:00", "1e10", "0x10",
    ])
    func unparseableExpiry(input: String) throws {
        #expect(ExpiryParser.expiresOn(.string(input), now: now) == nil)
        #expect(throws: ManagedIdentityError(code: .invalidTimestampFormat, message: "")) {
            try parse(#"{"access_token":"AT","expires_on":"\#(input)"}"#)
        }
    }

    /// The parse does not depend on the process's locale or time zone.
    @Test func parsingIgnoresLocaleAndTimeZone() {
        let previous = ProcessInfo.processInfo.environment["TZ"]
        setenv("TZ", "Asia/Kolkata", 1)
        tzset()
        defer {
            if let previous { setenv("TZ", previous, 1) } else { unsetenv("TZ") }
            tzset()
        }
        #expect(ExpiryParser.expiresOn(.string("11/26/2026 5:34:16 PM +00:00"), now: now) == 1_795_714_456)
        #expect(ExpiryParser.expiresOn(.string("2026-11-26 17:34:16"), now: now) == 1_795_714_456)
    }

    // TV-11 rows.
    @Test func netMockOneHour() throws {
        let token = try parse(
            #"{"access_token":"some-access-token","expires_on":"\#(Int(now) + 3600)","resource":"https://management.azure.com/","token_type":"Bearer","client_id":"client_id"}"#)
        #expect(token.expiresOn - now == 3600)
        #expect(token.refreshOn == nil)
        #expect(token.tokenType == "Bearer")
        #expect(token.accessToken == "some-access-token")
    }

    @Test func netMockThreeHoursRefreshesAtHalfLife() throws {
        let token = try parse(#"{"access_token":"AT","expires_on":"\#(Int(now) + 10800)"}"#)
        #expect(token.refreshOn == now + 5400)
    }

    @Test func isoExpiryThreeHoursOut() throws {
        let token = try parse(#"{"access_token":"AT","expires_on":"2026-01-01T03:00:00.0000000Z"}"#)
        #expect(token.expiresOn == now + 10800)
        #expect(token.refreshOn == now + 5400)
    }

    @Test func expiresOnNowIsInvalid() {
        #expect(throws: ManagedIdentityError(code: .invalidTokenProviderResponseValue, message: "")) {
            try parse(#"{"access_token":"AT","expires_on":"\#(Int(now))"}"#)
        }
    }

    @Test(arguments: ["1697490590", "2024-10-18T19:51:37.0000000+00:00"])
    func pastExpiryIsInvalid(value: String) {
        #expect(throws: ManagedIdentityError(code: .invalidTokenProviderResponseValue, message: "")) {
            try parse(#"{"access_token":"AT","expires_on":"\#(value)"}"#)
        }
    }

    @Test func pythonVMStringExpiresIn() throws {
        let token = try parse(#"{"access_token":"AT","expires_in":"7890","resource":"R"}"#)
        #expect(token.expiresOn == now + 7890)
        #expect(token.refreshOn == now + 3945)
        #expect(token.tokenType == "Bearer")
    }

    @Test func goNumericExpiresIn() throws {
        let token = try parse(
            #"{"access_token":"fake-access-token","expires_in":600,"resource":"https://management.azure.com","token_type":"Bearer"}"#)
        #expect(token.expiresOn == now + 600)
        #expect(token.refreshOn == nil)
    }

    @Test func endpointRefreshInIsHonoured() throws {
        let token = try parse(#"{"access_token":"first token","expires_in":86400,"refresh_in":43200,"token_type":"Bearer"}"#)
        #expect(token.refreshOn == now + 43200)
    }

    // TV-13
    @Test(arguments: [(3600, nil), (7200, nil), (7890, 3945), (10800, 5400)] as [(Int, Int?)])
    func halfLifeThreshold(lifetime: Int, refreshIn: Int?) throws {
        let token = try parse(#"{"access_token":"AT","expires_in":\#(lifetime)}"#)
        #expect(token.refreshOn == refreshIn.map { now + Double($0) })
    }

    // TV-14's 200 rows and other malformed successes.
    @Test(arguments: [
        "", "{}", #"{"access_token":""}"#, #"{"access_token":"AT"}"#, #"{"expires_in":3600}"#, "[]", #"{"access_token":5,"expires_in":3600}"#,
    ])
    func missingFields(body: String) {
        #expect {
            try parse(body)
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .requestFailed && error.statusCode == 200
                && error.message.contains("did not contain the expected fields")
        }
    }

    @Test(arguments: [
        #"|"access_token":"some-access-token","expires_on":"1795714456"}"#, "<html>", "not json",
    ])
    func nonJSONSuccessIsAParseFailure(body: String) {
        #expect(throws: ManagedIdentityError(code: .responseParseFailure, message: "")) { try parse(body) }
    }

    @Test func booleanExpiryIsRejected() {
        #expect(throws: ManagedIdentityError(code: .requestFailed, message: "")) {
            try parse(#"{"access_token":"AT","expires_in":true}"#)
        }
    }
}
