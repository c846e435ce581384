//! `NodeService`: register nodes, issue and rotate their tokens, show their state.

use chrono::Utc;
use languard_proto::v1 as pb;
use languard_proto::v1::node_service_server::NodeService;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use tonic::{Request, Response, Status};

use super::users::check_name;
use super::{Ctx, convert, page};
use crate::auth::{Role, refresh};
use crate::db::entities::{nodes, servers};
use crate::error::{ApiError, ApiResult};

/// The `NodeService` implementation.
pub struct NodeApi {
    ctx: Ctx,
}

/// Node tokens start with this, so they are recognisable in a config file.
pub const NODE_TOKEN_PREFIX: &str = "lgn_";

impl NodeApi {
    /// A service over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    async fn get_row(&self, id: i64) -> ApiResult<nodes::Model> {
        nodes::Entity::find_by_id(id)
            .one(&self.ctx.db)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("node {id} not found")))
    }

    fn to_proto(&self, n: &nodes::Model) -> pb::Node {
        let mut node = convert::node(n, self.ctx.agents.is_online(n.id));
        node.load = self.ctx.ingest.node_load(n.id);
        node
    }

    async fn create(&self, r: pb::CreateNodeRequest) -> ApiResult<pb::CreateNodeResponse> {
        check_name("name", &r.name)?;
        let (node, token) = create_node(&self.ctx.db, &r.name).await?;
        Ok(pb::CreateNodeResponse {
            node: Some(self.to_proto(&node)),
            token,
        })
    }

    async fn rotate(&self, id: i64) -> ApiResult<pb::CreateNodeResponse> {
        let row = self.get_row(id).await?;
        let token = refresh::random_token(NODE_TOKEN_PREFIX);
        let mut active = row.into_active_model();
        active.token_hash = Set(refresh::hash_token(&token));
        let row = active.update(&self.ctx.db).await?;
        self.ctx.agents.disconnect(id, "node token rotated");
        Ok(pb::CreateNodeResponse {
            node: Some(self.to_proto(&row)),
            token,
        })
    }

    async fn delete(&self, id: i64) -> ApiResult<()> {
        self.get_row(id).await?;
        let n = servers::Entity::find()
            .filter(servers::Column::NodeId.eq(id))
            .count(&self.ctx.db)
            .await?;
        if n > 0 {
            return Err(ApiError::FailedPrecondition(format!(
                "node {id} still has {n} server(s); delete them first"
            )));
        }
        nodes::Entity::delete_by_id(id).exec(&self.ctx.db).await?;
        self.ctx.agents.disconnect(id, "node deleted");
        Ok(())
    }

    async fn list(&self, r: pb::ListNodesRequest) -> ApiResult<pb::ListNodesResponse> {
        let p = page::parse(r.page_size, &r.page_token)?;
        let mut q = nodes::Entity::find()
            .order_by_asc(nodes::Column::Id)
            .limit(p.size);
        if let Some(after) = p.after {
            q = q.filter(nodes::Column::Id.gt(after));
        }
        let rows = q.all(&self.ctx.db).await?;
        Ok(pb::ListNodesResponse {
            next_page_token: page::next_token(rows.len(), p.size, rows.last().map(|n| n.id)),
            nodes: rows.iter().map(|n| self.to_proto(n)).collect(),
        })
    }
}

/// Creates a node row and returns it with its one-time token. Also used by the local-agent mode.
pub async fn create_node(
    db: &sea_orm::DatabaseConnection,
    name: &str,
) -> ApiResult<(nodes::Model, String)> {
    if nodes::Entity::find()
        .filter(nodes::Column::Name.eq(name))
        .one(db)
        .await?
        .is_some()
    {
        return Err(ApiError::AlreadyExists(format!(
            "node {name:?} already exists"
        )));
    }
    let token = refresh::random_token(NODE_TOKEN_PREFIX);
    let row = nodes::ActiveModel {
        name: Set(name.to_owned()),
        token_hash: Set(refresh::hash_token(&token)),
        online: Set(false),
        last_seen_at: Set(None),
        agent_version: Set(String::new()),
        hostname: Set(String::new()),
        os: Set(String::new()),
        acked_seq: Set(0),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((row, token))
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn create_node(
        &self,
        req: Request<pb::CreateNodeRequest>,
    ) -> Result<Response<pb::CreateNodeResponse>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.create(req.into_inner()).await?))
    }

    async fn list_nodes(
        &self,
        req: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    async fn get_node(
        &self,
        req: Request<pb::GetNodeRequest>,
    ) -> Result<Response<pb::Node>, Status> {
        self.ctx.auth.require(&req, Role::Viewer).await?;
        let row = self.get_row(req.get_ref().id).await?;
        Ok(Response::new(self.to_proto(&row)))
    }

    async fn delete_node(
        &self,
        req: Request<pb::DeleteNodeRequest>,
    ) -> Result<Response<pb::DeleteNodeResponse>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        self.delete(req.get_ref().id).await?;
        Ok(Response::new(pb::DeleteNodeResponse {}))
    }

    async fn rotate_node_token(
        &self,
        req: Request<pb::RotateNodeTokenRequest>,
    ) -> Result<Response<pb::CreateNodeResponse>, Status> {
        self.ctx.auth.require(&req, Role::Admin).await?;
        Ok(Response::new(self.rotate(req.get_ref().id).await?))
    }
}
