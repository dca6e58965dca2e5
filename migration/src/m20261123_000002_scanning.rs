//! Scanning: targets, scans, de-duplicated findings, the scan↔finding link
//! table and finding comments.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // target
        manager
            .create_table(
                Table::create()
                    .table(Target::Table)
                    .col(pk_uuid(Target::Id))
                    .col(uuid(Target::OrgId))
                    .col(string(Target::Kind))
                    .col(string(Target::Name))
                    .col(json_binary(Target::Labels))
                    .col(json_binary(Target::Metadata))
                    .col(timestamp_with_time_zone_null(Target::LastScanAt))
                    .col(double_null(Target::LastScore))
                    .col(timestamp_with_time_zone(Target::CreatedAt))
                    .col(timestamp_with_time_zone(Target::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_target_org")
                            .from(Target::Table, Target::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_target_org_kind_name")
                    .table(Target::Table)
                    .col(Target::OrgId)
                    .col(Target::Kind)
                    .col(Target::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_target_org_last_scan")
                    .table(Target::Table)
                    .col(Target::OrgId)
                    .col(Target::LastScanAt)
                    .to_owned(),
            )
            .await?;

        // scan
        manager
            .create_table(
                Table::create()
                    .table(Scan::Table)
                    .col(pk_uuid(Scan::Id))
                    .col(uuid(Scan::OrgId))
                    .col(uuid(Scan::TargetId))
                    .col(string(Scan::Status))
                    .col(string(Scan::Source))
                    .col(string(Scan::ScannerName))
                    .col(string_null(Scan::ScannerVersion))
                    .col(string_null(Scan::Format))
                    .col(string_null(Scan::PolicyTier))
                    .col(double_null(Scan::Score))
                    .col(integer(Scan::CountCritical).default(0))
                    .col(integer(Scan::CountHigh).default(0))
                    .col(integer(Scan::CountMedium).default(0))
                    .col(integer(Scan::CountLow).default(0))
                    .col(integer(Scan::CountInfo).default(0))
                    .col(integer(Scan::FindingsTotal).default(0))
                    .col(integer(Scan::FindingsNew).default(0))
                    .col(integer(Scan::FindingsFixed).default(0))
                    .col(integer(Scan::FindingsUnchanged).default(0))
                    .col(string_null(Scan::RawKey))
                    .col(string_null(Scan::RawSha256))
                    .col(big_integer_null(Scan::RawSize))
                    .col(json_binary_null(Scan::Progress))
                    .col(text_null(Scan::Error))
                    .col(string_null(Scan::IdempotencyKey))
                    .col(string_null(Scan::CreatedBy))
                    .col(timestamp_with_time_zone(Scan::ScannedAt))
                    .col(timestamp_with_time_zone(Scan::CreatedAt))
                    .col(timestamp_with_time_zone_null(Scan::StartedAt))
                    .col(timestamp_with_time_zone_null(Scan::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_org")
                            .from(Scan::Table, Scan::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_target")
                            .from(Scan::Table, Scan::TargetId)
                            .to(Target::Table, Target::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_org_target_scanned")
                    .table(Scan::Table)
                    .col(Scan::OrgId)
                    .col(Scan::TargetId)
                    .col(Scan::ScannedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_org_status")
                    .table(Scan::Table)
                    .col(Scan::OrgId)
                    .col(Scan::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_org_scanned")
                    .table(Scan::Table)
                    .col(Scan::OrgId)
                    .col(Scan::ScannedAt)
                    .to_owned(),
            )
            .await?;
        // NULL idempotency keys never collide (NULLs are distinct in a
        // unique index on both SQLite and PostgreSQL).
        manager
            .create_index(
                Index::create()
                    .name("uq_scan_org_idempotency")
                    .table(Scan::Table)
                    .col(Scan::OrgId)
                    .col(Scan::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // finding
        manager
            .create_table(
                Table::create()
                    .table(Finding::Table)
                    .col(pk_uuid(Finding::Id))
                    .col(uuid(Finding::OrgId))
                    .col(uuid(Finding::TargetId))
                    .col(string(Finding::Scanner))
                    .col(string(Finding::Fingerprint))
                    .col(string(Finding::RuleId))
                    .col(text(Finding::Title))
                    .col(string(Finding::Severity))
                    .col(text(Finding::CveIds))
                    .col(text(Finding::CweIds))
                    .col(text_null(Finding::LocationPath))
                    .col(integer_null(Finding::LocationLine))
                    .col(text_null(Finding::Component))
                    .col(text(Finding::Description))
                    .col(text_null(Finding::Remediation))
                    .col(integer(Finding::Occurrences).default(1))
                    .col(string(Finding::Status))
                    .col(timestamp_with_time_zone(Finding::FirstSeenAt))
                    .col(timestamp_with_time_zone(Finding::LastSeenAt))
                    .col(timestamp_with_time_zone_null(Finding::FixedAt))
                    .col(uuid_null(Finding::FirstScanId))
                    .col(uuid_null(Finding::LastScanId))
                    .col(string(Finding::TriageState).default("untriaged"))
                    .col(text_null(Finding::TriageNote))
                    .col(timestamp_with_time_zone_null(Finding::TriageExpiresAt))
                    .col(string_null(Finding::TriagedBy))
                    .col(timestamp_with_time_zone_null(Finding::TriagedAt))
                    .col(timestamp_with_time_zone(Finding::CreatedAt))
                    .col(timestamp_with_time_zone(Finding::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_finding_org")
                            .from(Finding::Table, Finding::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_finding_target")
                            .from(Finding::Table, Finding::TargetId)
                            .to(Target::Table, Target::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_finding_first_scan")
                            .from(Finding::Table, Finding::FirstScanId)
                            .to(Scan::Table, Scan::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_finding_last_scan")
                            .from(Finding::Table, Finding::LastScanId)
                            .to(Scan::Table, Scan::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_finding_target_fingerprint")
                    .table(Finding::Table)
                    .col(Finding::TargetId)
                    .col(Finding::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_finding_target_status_severity")
                    .table(Finding::Table)
                    .col(Finding::TargetId)
                    .col(Finding::Status)
                    .col(Finding::Severity)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_finding_org_status_severity")
                    .table(Finding::Table)
                    .col(Finding::OrgId)
                    .col(Finding::Status)
                    .col(Finding::Severity)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_finding_target_scanner_status")
                    .table(Finding::Table)
                    .col(Finding::TargetId)
                    .col(Finding::Scanner)
                    .col(Finding::Status)
                    .to_owned(),
            )
            .await?;

        // scan_finding
        manager
            .create_table(
                Table::create()
                    .table(ScanFinding::Table)
                    .col(uuid(ScanFinding::ScanId))
                    .col(uuid(ScanFinding::FindingId))
                    .col(uuid(ScanFinding::OrgId))
                    .col(integer(ScanFinding::Occurrences).default(1))
                    .col(string(ScanFinding::Change))
                    .primary_key(
                        Index::create()
                            .name("pk_scan_finding")
                            .col(ScanFinding::ScanId)
                            .col(ScanFinding::FindingId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_finding_scan")
                            .from(ScanFinding::Table, ScanFinding::ScanId)
                            .to(Scan::Table, Scan::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_finding_finding")
                            .from(ScanFinding::Table, ScanFinding::FindingId)
                            .to(Finding::Table, Finding::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_finding_org")
                            .from(ScanFinding::Table, ScanFinding::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_finding_finding")
                    .table(ScanFinding::Table)
                    .col(ScanFinding::FindingId)
                    .to_owned(),
            )
            .await?;

        // comment
        manager
            .create_table(
                Table::create()
                    .table(Comment::Table)
                    .col(pk_uuid(Comment::Id))
                    .col(uuid(Comment::OrgId))
                    .col(uuid(Comment::FindingId))
                    .col(uuid_null(Comment::AuthorId))
                    .col(string(Comment::AuthorLabel))
                    .col(text(Comment::Body))
                    .col(timestamp_with_time_zone(Comment::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comment_org")
                            .from(Comment::Table, Comment::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comment_finding")
                            .from(Comment::Table, Comment::FindingId)
                            .to(Finding::Table, Finding::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comment_author")
                            .from(Comment::Table, Comment::AuthorId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_comment_finding_created")
                    .table(Comment::Table)
                    .col(Comment::FindingId)
                    .col(Comment::CreatedAt)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first; indexes go with their tables.
        manager
            .drop_table(Table::drop().table(Comment::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ScanFinding::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Finding::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Scan::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Target::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Target {
    Table,
    Id,
    OrgId,
    Kind,
    Name,
    Labels,
    Metadata,
    LastScanAt,
    LastScore,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Scan {
    Table,
    Id,
    OrgId,
    TargetId,
    Status,
    Source,
    ScannerName,
    ScannerVersion,
    Format,
    PolicyTier,
    Score,
    CountCritical,
    CountHigh,
    CountMedium,
    CountLow,
    CountInfo,
    FindingsTotal,
    FindingsNew,
    FindingsFixed,
    FindingsUnchanged,
    RawKey,
    RawSha256,
    RawSize,
    Progress,
    Error,
    IdempotencyKey,
    CreatedBy,
    ScannedAt,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Finding {
    Table,
    Id,
    OrgId,
    TargetId,
    Scanner,
    Fingerprint,
    RuleId,
    Title,
    Severity,
    CveIds,
    CweIds,
    LocationPath,
    LocationLine,
    Component,
    Description,
    Remediation,
    Occurrences,
    Status,
    FirstSeenAt,
    LastSeenAt,
    FixedAt,
    FirstScanId,
    LastScanId,
    TriageState,
    TriageNote,
    TriageExpiresAt,
    TriagedBy,
    TriagedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ScanFinding {
    Table,
    ScanId,
    FindingId,
    OrgId,
    Occurrences,
    Change,
}

#[derive(DeriveIden)]
enum Comment {
    Table,
    Id,
    OrgId,
    FindingId,
    AuthorId,
    AuthorLabel,
    Body,
    CreatedAt,
}
