use sqlx::PgPool;
use uuid::Uuid;

pub async fn create(db: &PgPool, name: &str) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("insert into accounts (id, name) values ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(db)
        .await?;
    Ok(id)
}

pub async fn exists(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists(select 1 from accounts where id = $1)")
        .bind(id)
        .fetch_one(db)
        .await
}
