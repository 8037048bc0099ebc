//! A project's API keys during apply: creating a missing key and switching the legacy keys
//! off. After either, the keys this client run had read are dropped, so the steps that follow
//! (Storage, the site's build) read them again and pick the new ones.

use super::ClientRun;
use super::error::StepError;
use crate::supabase::NewKeyKind;

impl<'r, 'a> ClientRun<'r, 'a> {
    /// `CreateApiKey`: look-before-create after an unknown outcome (see
    /// [`crate::supabase::SupabaseClient::create_api_key`]).
    pub(super) async fn create_api_key(
        &mut self,
        kind: NewKeyKind,
        name: &str,
    ) -> Result<(), StepError> {
        let project_ref = self.project_ref()?.to_string();
        self.ctx
            .supabase
            .create_api_key(&project_ref, kind, name)
            .await?;
        self.keys = None;
        Ok(())
    }

    /// `DisableLegacyKeys`: an absolute value, so safe to send again.
    pub(super) async fn disable_legacy_keys(&mut self) -> Result<(), StepError> {
        let project_ref = self.project_ref()?.to_string();
        self.ctx
            .supabase
            .set_legacy_keys(&project_ref, false)
            .await?;
        self.keys = None;
        Ok(())
    }
}
