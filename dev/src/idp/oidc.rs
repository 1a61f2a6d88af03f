//! The local issuer's HTTP side, served by the development server under
//! [`ISSUER_PATH`]: discovery, JWKS, the authorization endpoint (a page
//! listing the local agents), the token endpoint (authorization code with
//! PKCE S256, public client), and `dev-token` for scripts and curl.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::Full;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ISSUER_PATH, LOCAL_CLIENT_ID, LocalIssuer, TOKEN_LIFETIME};

/// How long an authorization code may wait for its exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// A code handed to the console, waiting to be exchanged once.
struct Pending {
    agent: String,
    redirect_uri: String,
    challenge: String,
    issued: Instant,
}

#[derive(Default)]
pub struct Codes(Mutex<HashMap<String, Pending>>);

type Answer = http::Response<Full<Bytes>>;

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type.parse().expect("static"));
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Answer {
    answer(status, "application/json", body.to_string())
}

/// An OAuth error, as the token endpoint words it (RFC 6749 §5.2).
fn oauth_error(error: &str, description: &str) -> Answer {
    json_answer(
        StatusCode::BAD_REQUEST,
        json!({ "error": error, "error_description": description }),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl LocalIssuer {
    /// The only redirect URI registered for the console: its own page.
    pub fn console_url(&self) -> String {
        format!(
            "{}/console",
            self.issuer()
                .strip_suffix(ISSUER_PATH)
                .unwrap_or(self.issuer())
        )
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.issuer())
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer())
    }

    /// Answers a request under [`ISSUER_PATH`]; None for any other path.
    pub fn serve(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> Option<Answer> {
        let rest = path.strip_prefix(ISSUER_PATH)?;
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        Some(match (method, rest) {
            (&Method::GET, "/.well-known/openid-configuration") => self.discovery(),
            (&Method::GET, "/jwks.json") => json_answer(
                StatusCode::OK,
                serde_json::to_value(self.jwks()).unwrap_or_default(),
            ),
            (&Method::GET, "/authorize") => self.authorize(&params),
            (&Method::POST, "/token") => {
                let form: HashMap<String, String> =
                    form_urlencoded::parse(body).into_owned().collect();
                self.exchange(&form)
            }
            (&Method::GET, "/dev-token") => self.dev_token(&params),
            _ => answer(
                StatusCode::NOT_FOUND,
                "text/plain",
                "no such endpoint".into(),
            ),
        })
    }

    fn discovery(&self) -> Answer {
        json_answer(
            StatusCode::OK,
            json!({
                "issuer": self.issuer(),
                "authorization_endpoint": self.authorize_url(),
                "token_endpoint": self.token_url(),
                "jwks_uri": format!("{}/jwks.json", self.issuer()),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["openid", "email", "profile"],
            }),
        )
    }

    /// The sign-in page: one link per local agent; following one sends
    /// the browser back to the console with a one-time code.
    fn authorize(&self, params: &HashMap<String, String>) -> Answer {
        let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
        let refuse = |why: &str| {
            answer(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("sign-in refused: {why}"),
            )
        };
        if get("response_type") != "code" {
            return refuse("response_type must be code");
        }
        if get("client_id") != LOCAL_CLIENT_ID {
            return refuse("unknown client_id");
        }
        if get("redirect_uri") != self.console_url() {
            return refuse("redirect_uri is not registered");
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
            return refuse("PKCE is required (code_challenge with S256)");
        }
        let Some(agent) = params.get("agent").and_then(|name| self.agent(name)) else {
            return self.sign_in_page(params);
        };
        let code = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut codes) = self.codes.0.lock() {
            codes.retain(|_, pending| pending.issued.elapsed() < CODE_LIFETIME);
            codes.insert(
                code.clone(),
                Pending {
                    agent: agent.email.clone(),
                    redirect_uri: get("redirect_uri").to_owned(),
                    challenge: get("code_challenge").to_owned(),
                    issued: Instant::now(),
                },
            );
        }
        let location = format!(
            "{}?{}",
            get("redirect_uri"),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &code)
                .append_pair("state", get("state"))
                .finish()
        );
        let mut response = answer(StatusCode::FOUND, "text/plain", String::new());
        if let Ok(value) = location.parse() {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
    }

    fn sign_in_page(&self, params: &HashMap<String, String>) -> Answer {
        let links: String = self
            .agents()
            .iter()
            .map(|agent| {
                let mut query = form_urlencoded::Serializer::new(String::new());
                for (name, value) in params {
                    query.append_pair(name, value);
                }
                query.append_pair("agent", agent.username());
                format!(
                    "<li><a data-agent=\"{}\" href=\"authorize?{}\">{}</a> {}{}</li>",
                    escape(agent.username()),
                    escape(&query.finish()),
                    escape(&agent.email),
                    escape(&agent.numbers.join(", ")),
                    if agent.supervisor {
                        " (supervisor)"
                    } else {
                        ""
                    },
                )
            })
            .collect();
        answer(
            StatusCode::OK,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Local sign-in</title></head>\
                 <body><h1>Local sign-in</h1><p>The development server's own identity provider. Sign in as:</p>\
                 <ul>{links}</ul></body></html>"
            ),
        )
    }

    /// The token endpoint: the code once, for the client and redirect URI it
    /// was issued to, with the verifier whose SHA-256 is the challenge.
    fn exchange(&self, form: &HashMap<String, String>) -> Answer {
        let get = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        if get("grant_type") != "authorization_code" {
            return oauth_error("unsupported_grant_type", "only authorization_code");
        }
        if get("client_id") != LOCAL_CLIENT_ID {
            return oauth_error("invalid_client", "unknown client_id");
        }
        let pending = self
            .codes
            .0
            .lock()
            .ok()
            .and_then(|mut codes| codes.remove(get("code")));
        let Some(pending) = pending.filter(|p| p.issued.elapsed() < CODE_LIFETIME) else {
            return oauth_error("invalid_grant", "unknown, used or expired code");
        };
        if pending.redirect_uri != get("redirect_uri") {
            return oauth_error("invalid_grant", "redirect_uri differs");
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
        if computed != pending.challenge {
            return oauth_error("invalid_grant", "code_verifier does not match");
        }
        let Some(agent) = self.agent(&pending.agent) else {
            return oauth_error("invalid_grant", "no such agent");
        };
        let token = self.token_for(agent);
        json_answer(
            StatusCode::OK,
            json!({
                "id_token": token,
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME.as_secs(),
            }),
        )
    }

    /// `GET dev-token?agent=alice`: an ID token as plain text, for curl.
    fn dev_token(&self, params: &HashMap<String, String>) -> Answer {
        match params.get("agent").and_then(|name| self.agent(name)) {
            Some(agent) => answer(StatusCode::OK, "text/plain", self.token_for(agent)),
            None => {
                let names: Vec<&str> = self.agents().iter().map(|a| a.username()).collect();
                answer(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    format!("?agent= one of: {}", names.join(", ")),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::idp::local_agents;

    async fn text(response: Answer) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn issuer() -> LocalIssuer {
        LocalIssuer::new("http://127.0.0.1:3000", local_agents()).unwrap()
    }

    fn authorize_query(challenge: &str, agent: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", LOCAL_CLIENT_ID)
            .append_pair("redirect_uri", "http://127.0.0.1:3000/console")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "xyz");
        if let Some(agent) = agent {
            query.append_pair("agent", agent);
        }
        query.finish()
    }

    #[tokio::test]
    async fn authorization_code_with_pkce() {
        let issuer = issuer();
        let verifier = "a-code-verifier-of-enough-length-0123456789-abcdefgh";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let page = issuer
            .serve(
                &Method::GET,
                "/local-idp/authorize",
                &authorize_query(&challenge, None),
                b"",
            )
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(text(page).await.contains("bob@example.com"));

        let redirect = issuer
            .serve(
                &Method::GET,
                "/local-idp/authorize",
                &authorize_query(&challenge, Some("bob")),
                b"",
            )
            .unwrap();
        assert_eq!(redirect.status(), StatusCode::FOUND);
        let location = redirect.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            location.starts_with("http://127.0.0.1:3000/console?code="),
            "{location}"
        );
        assert!(location.ends_with("&state=xyz"));
        let code = location
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();

        let exchange = |code: &str, verifier: &str| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("client_id", LOCAL_CLIENT_ID)
                .append_pair("redirect_uri", "http://127.0.0.1:3000/console")
                .append_pair("code", code)
                .append_pair("code_verifier", verifier)
                .finish()
        };
        let wrong = issuer
            .serve(
                &Method::POST,
                "/local-idp/token",
                "",
                exchange(code, "another-verifier").as_bytes(),
            )
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        assert!(text(wrong).await.contains("invalid_grant"));

        // A failed exchange used the code up; sign in again.
        let redirect = issuer
            .serve(
                &Method::GET,
                "/local-idp/authorize",
                &authorize_query(&challenge, Some("bob")),
                b"",
            )
            .unwrap();
        let location = redirect.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        let code = location
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let tokens = issuer
            .serve(
                &Method::POST,
                "/local-idp/token",
                "",
                exchange(code, verifier).as_bytes(),
            )
            .unwrap();
        assert_eq!(tokens.status(), StatusCode::OK);
        let tokens: serde_json::Value = serde_json::from_str(&text(tokens).await).unwrap();
        let claims = issuer
            .verifier()
            .verify(tokens["id_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims["email"], "bob@example.com");
        let again = issuer
            .serve(
                &Method::POST,
                "/local-idp/token",
                "",
                exchange(code, verifier).as_bytes(),
            )
            .unwrap();
        assert_eq!(again.status(), StatusCode::BAD_REQUEST, "a code works once");
    }

    #[tokio::test]
    async fn authorize_refuses_what_is_not_registered() {
        let issuer = issuer();
        let challenge = "x".repeat(43);
        let good = authorize_query(&challenge, Some("bob"));
        for bad in [
            good.replace("response_type=code", "response_type=token"),
            good.replace(LOCAL_CLIENT_ID, "someone-else"),
            good.replace("127.0.0.1%3A3000", "evil.example.com"),
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
        ] {
            let refused = issuer
                .serve(&Method::GET, "/local-idp/authorize", &bad, b"")
                .unwrap();
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(issuer.serve(&Method::GET, "/console", "", b"").is_none());
    }
}
