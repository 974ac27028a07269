import Testing

@testable import AuthenticatedHTTP

@Suite struct AuthenticationChallengeTests {
    @Test func aContinuousAccessEvaluationChallengeIsReadWhole() {
        let header = #"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNzI2MDc3NTk1In19fQ==""#
        let challenges = AuthenticationChallenge.parse(header)
        #expect(challenges.count == 1)
        #expect(challenges.first?.scheme == "Bearer")
        #expect(challenges.first?.parameters["realm"] == "")
        #expect(challenges.first?.parameters["error"] == "insufficient_claims")
        #expect(challenges.first?.parameters["authorization_uri"] == "https://login.microsoftonline.com/common/oauth2/authorize")
        #expect(challenges.first?.parameters["claims"]?.hasSuffix("==") == true)
    }

    @Test func severalChallengesInOneValueAndAcrossValues() {
        let challenges = AuthenticationChallenge.parse([
            #"Basic realm="a, b", Bearer error=invalid_token, error_description="expired""#,
            #"PoP nonce="n1""#,
        ])
        #expect(challenges.map(\.scheme) == ["Basic", "Bearer", "PoP"])
        #expect(challenges[0].parameters == ["realm": "a, b"])
        #expect(challenges[1].parameters == ["error": "invalid_token", "error_description": "expired"])
        #expect(challenges[2].parameters == ["nonce": "n1"])
    }

    @Test func token68AndBareSchemes() {
        let challenges = AuthenticationChallenge.parse("Negotiate, Basic dXNlcjpwYXNz==, Bearer")
        #expect(challenges.map(\.scheme) == ["Negotiate", "Basic", "Bearer"])
        #expect(challenges[1].token68 == "dXNlcjpwYXNz==")
        #expect(challenges[1].parameters.isEmpty)
    }

    @Test func quotedStringsUnescapeAndNamesAreCaseInsensitive() {
        let challenges = AuthenticationChallenge.parse(#"bearer ERROR="a \"quoted\" \\ value""#)
        #expect(challenges.first?.hasScheme("Bearer") == true)
        #expect(challenges.first?.parameters["error"] == #"a "quoted" \ value"#)
    }

    @Test(arguments: [
        "", " , ,", "\"", "Bearer error=\"unterminated", "Bearer =x", "Bearer a=b=c", ",,Bearer ,a=", "Bearer error=\"x\" junk, Basic realm=y",
        "\u{0}\u{1}Bearer", String(repeating: "Bearer a=\"b\", ", count: 30),
    ])
    func malformedHeadersNeverTrapAndKeepWhatIsReadable(header: String) {
        let challenges = AuthenticationChallenge.parse(header)
        #expect(challenges.count <= 400)
        if header == "Bearer error=\"x\" junk, Basic realm=y" {
            #expect(challenges.map(\.scheme) == ["Bearer", "Basic"])
            #expect(challenges.last?.parameters["realm"] == "y")
        }
    }
}

@Suite struct ClaimsChallengeTests {
    let claims = #"{"access_token":{"nbf":{"essential":true,"value":"1726077595"}}}"#

    @Test func aClaimsChallengeGivesItsClaimsInBase64URLOrBase64() {
        for encoded in [ClaimsChallenge.encode(claims), ClaimsChallenge.encode(claims) + "==".prefix((4 - ClaimsChallenge.encode(claims).count % 4) % 4)] {
            let header = #"Bearer realm="", error="insufficient_claims", claims="\#(encoded)""#
            #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: [header]) == claims)
        }
    }

    @Test func otherResponsesAreNotClaimsChallenges() {
        let encoded = ClaimsChallenge.encode(claims)
        #expect(ClaimsChallenge.claims(status: 403, wwwAuthenticate: [#"Bearer error="insufficient_claims", claims="\#(encoded)""#]) == nil)
        #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: [#"Bearer error="invalid_token", claims="\#(encoded)""#]) == nil)
        #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: [#"Basic error="insufficient_claims", claims="\#(encoded)""#]) == nil)
        #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: [#"Bearer error="insufficient_claims", claims="bm90IGpzb24""#]) == nil)
        #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: [#"Bearer error="insufficient_claims", claims="WzEsMl0""#]) == nil)
        #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: [#"Bearer error="insufficient_claims""#]) == nil)
        #expect(ClaimsChallenge.claims(status: 401, wwwAuthenticate: []) == nil)
    }
}
