//! The realm export as Keycloak imports it: the file the config names, plus `keycloak.login`'s
//! test user, whose password is the environment's generated `keycloak-login-password`.

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// `realm_json` with `user` added (replacing a user of that name), complete enough to log in
/// without a required action: Keycloak 24+ asks a user without email, first and last name to
/// update the profile at the first login (the user profile's `VERIFY_PROFILE` required action,
/// on by default), and an unverified email may be asked to verify it.
pub(crate) fn with_test_user(realm_json: &str, user: &str, password: &str, domain: &str) -> Result<String> {
    let mut realm: Value =
        serde_json::from_str(realm_json).map_err(|e| Error::Realm { reason: format!("it is not JSON: {e}") })?;
    let Some(object) = realm.as_object_mut() else {
        return Err(Error::Realm { reason: "it is not a JSON object".into() });
    };
    let users = object.entry("users").or_insert_with(|| json!([]));
    let Some(users) = users.as_array_mut() else {
        return Err(Error::Realm { reason: "its `users` is not a list".into() });
    };
    users.retain(|u| u["username"] != user);
    users.push(json!({
        "username": user,
        "enabled": true,
        "email": format!("{user}@{domain}"),
        "emailVerified": true,
        "firstName": "kind-parity",
        "lastName": "login probe",
        "requiredActions": [],
        "credentials": [{ "type": "password", "value": password, "temporary": false }],
    }));
    serde_json::to_string_pretty(&realm).map_err(|e| Error::Realm { reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_user_is_added_with_its_password_and_a_complete_profile() {
        let out =
            with_test_user(r#"{"realm":"dev","users":[{"username":"alice"}]}"#, "probe", "pw", "localtest.me").unwrap();
        let realm: Value = serde_json::from_str(&out).unwrap();
        let users = realm["users"].as_array().unwrap();
        assert_eq!(users.len(), 2);
        let probe = &users[1];
        assert_eq!(probe["credentials"][0]["value"], "pw");
        assert_eq!(
            (probe["email"].as_str(), probe["emailVerified"].as_bool()),
            (Some("probe@localtest.me"), Some(true))
        );
    }

    #[test]
    fn a_user_of_the_same_name_is_replaced() {
        let out = with_test_user(r#"{"users":[{"username":"probe","enabled":false}]}"#, "probe", "pw", "d").unwrap();
        let realm: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(realm["users"].as_array().unwrap().len(), 1);
        assert_eq!(realm["users"][0]["enabled"], true);
    }

    #[test]
    fn a_realm_that_is_not_an_object_is_an_error() {
        assert!(matches!(with_test_user("[1]", "u", "p", "d"), Err(Error::Realm { .. })));
    }
}
