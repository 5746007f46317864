//! [`insert_all`]: the one way rows are written; every table's module uses
//! it. One INSERT carries all the rows given (the processor's batches, not
//! a row at a time), and no rows means no INSERT at all.

use clickhouse::{Client, RowWrite};

/// Writes `rows` to `table` in one INSERT. Name the row type, as in
/// `insert_all::<Block<'_>>(…)`: it cannot be inferred from borrowed rows.
pub(crate) async fn insert_all<T: RowWrite>(
    client: &Client,
    table: &str,
    rows: &[T::Value<'_>],
) -> clickhouse::error::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<T>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}
