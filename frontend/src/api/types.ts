// Names for the generated schema's components: aliases only, never a shape
// written by hand, so a contract change reaches every page that reads it.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type User = Schemas["User"];
export type Profile = Schemas["Profile"];
export type Article = Schemas["Article"];
export type ArticleListItem = Schemas["ArticleListItem"];
export type ArticleList = Schemas["MultipleArticlesResponse"];
export type Comment = Schemas["Comment"];
export type ErrorResponse = Schemas["ErrorResponse"];
export type NewUser = Schemas["NewUser"];
export type LoginUser = Schemas["LoginUser"];
export type UpdateUser = Schemas["UpdateUser"];
export type NewArticle = Schemas["NewArticle"];
